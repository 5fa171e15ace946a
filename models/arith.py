"""Step-by-step addition problems in DeepSeek-R1 form, and the held-out rule.

A problem is a pair of non-negative integers (a, b), each with MIN_DIGITS..MAX_DIGITS
digits. Its trace adds column by column from the ones place, one step per column,
steps separated by blank lines inside the think block, e.g. for 567 + 765:

  <think>
  Add the ones: 7 + 5 = 12, write 2, carry 1.

  Add the tens: 6 + 6 + 1 = 13, write 3, carry 1.

  Add the hundreds: 5 + 7 + 1 = 13, write 3, carry 1.

  Write the final carry: 1.

  So the sum is 1332.
  </think>
  The answer is 1332.

A column where one operand has no digit uses 0 for it. "+ 1" appears only when the
carry into the column is 1.

Held-out rule: a problem is a TEST problem iff the first byte of
SHA-256("{a}+{b}") is < 26 (about 10%); training never uses test problems, and the
evaluation uses only test problems. The rule is on the ordered pair (a, b).
"""

import hashlib
import random

BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
USER = "<\uff5cUser\uff5c>"
ASSISTANT = "<\uff5cAssistant\uff5c>"
THINK = "<think>"
END_THINK = "</think>"
SPECIAL_TOKENS = [BOS, EOS, USER, ASSISTANT, THINK, END_THINK]

MIN_DIGITS = 2
MAX_DIGITS = 4
PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands"]


def is_test(a, b):
    """True iff (a, b) is held out for evaluation (never trained on)."""
    return hashlib.sha256(f"{a}+{b}".encode()).digest()[0] < 26


def user_prompt(a, b):
    return f"What is {a} + {b}?"


def chat_prompt(user, system=""):
    """The R1-Distill chat template as the engine applies it; generation starts here."""
    return f"{BOS}{system}{USER}{user}{ASSISTANT}{THINK}\n"


def completion(a, b):
    """The model's output after chat_prompt(): think steps, answer, EOS."""
    da = [int(c) for c in reversed(str(a))]
    db = [int(c) for c in reversed(str(b))]
    n = max(len(da), len(db))
    steps = []
    carry = 0
    for i in range(n):
        x = da[i] if i < len(da) else 0
        y = db[i] if i < len(db) else 0
        s = x + y + carry
        plus = " + 1" if carry else ""
        carry = s // 10
        steps.append(f"Add the {PLACES[i]}: {x} + {y}{plus} = {s}, write {s % 10}, carry {carry}.")
    if carry:
        steps.append(f"Write the final carry: {carry}.")
    total = a + b
    steps.append(f"So the sum is {total}.")
    return "\n\n".join(steps) + f"\n{END_THINK}\nThe answer is {total}.{EOS}"


def sample_operand(rng, digits=None):
    d = digits or rng.randint(MIN_DIGITS, MAX_DIGITS)
    return rng.randint(10 ** (d - 1), 10 ** d - 1)


def sample_problems(rng, count, test, digits_a=None, digits_b=None):
    """`count` problems from rng, all test (test=True) or all train (test=False).
    Operand digit counts are uniform in MIN_DIGITS..MAX_DIGITS unless given."""
    out = []
    while len(out) < count:
        a, b = sample_operand(rng, digits_a), sample_operand(rng, digits_b)
        if is_test(a, b) == test:
            out.append((a, b))
    return out


def heldout_problems(count=500, seed=12345):
    """The evaluation set: the first `count` distinct test problems from a fixed seed."""
    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < count:
        (p,) = sample_problems(rng, 1, test=True)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def parse_answer(text):
    """The integer after the last 'The answer is ' in text, or None."""
    key = "The answer is "
    i = text.rfind(key)
    if i < 0:
        return None
    j = i + len(key)
    k = j
    while k < len(text) and text[k].isdigit():
        k += 1
    return int(text[j:k]) if k > j else None


if __name__ == "__main__":
    print(chat_prompt(user_prompt(567, 765)) + completion(567, 765))
    print(chat_prompt(user_prompt(9999, 12)) + completion(9999, 12))
