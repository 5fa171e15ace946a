#!/usr/bin/python3
"""Greedy exact-answer accuracy of a GGUF model on the held-out addition problems.

  /usr/bin/python3 models/eval.py --model models/stepproof-arith.gguf \
      --engine build-model/bin/stepproof-engine            # the project's C++ engine
  /usr/bin/python3 models/eval.py --model models/stepproof-arith.gguf --torch   # PyTorch

The problems are arith.heldout_problems(N): test-split problems only (see arith.py
for the held-out rule), so none was trained on. With --engine each problem runs
`stepproof-engine generate --model M --prompt "What is A + B?" --greedy --ids`
(the engine applies the R1 chat template); the generated ids are decoded with the
model's own vocabulary and the answer is the number after the last
"The answer is ". --check-tokenizer also compares `stepproof-engine tokenize`
with this package's Python tokenizer on prompts and full traces.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import arith  # noqa: E402


def engine_generate(engine, model, a, b, max_tokens):
    r = subprocess.run([engine, "generate", "--model", model, "--prompt", arith.user_prompt(a, b),
                        "--greedy", "--ids", f"--max-tokens={max_tokens}", "--threads=1"],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"engine failed on {a} + {b}: {r.stderr.strip()}")
    ids = None
    for line in r.stdout.splitlines():
        if line.startswith("ids: "):
            ids = [int(x) for x in line[5:].split()]
    if ids is None:
        raise RuntimeError(f"engine printed no ids for {a} + {b}")
    return ids, r.stdout


def check_tokenizer(engine, model, tok, problems):
    bad = 0
    texts = []
    for a, b in problems:
        p = arith.chat_prompt(arith.user_prompt(a, b))
        texts += [p, p + arith.completion(a, b), arith.completion(a, b)]
    for t in texts:
        r = subprocess.run([engine, "tokenize", "--model", model, t], capture_output=True, text=True, check=False)
        got = [int(x) for x in r.stdout.split()]
        want = tok.encode(t)
        if got != want:
            bad += 1
            if bad <= 3:
                print(f"TOKENIZER MISMATCH on {t!r}:\n  engine {got}\n  python {want}")
    print(f"tokenizer: {len(texts) - bad}/{len(texts)} texts tokenize identically (engine vs Python)")
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/stepproof-arith.gguf")
    ap.add_argument("--engine", default="build-model/bin/stepproof-engine")
    ap.add_argument("--torch", action="store_true", help="decode with PyTorch instead of the engine")
    ap.add_argument("-n", type=int, default=500, help="number of held-out problems")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--check-tokenizer", type=int, default=0, metavar="N",
                    help="first compare engine and Python tokenization on N problems")
    ap.add_argument("--show", type=int, default=2, help="print this many full outputs")
    args = ap.parse_args()

    from model import from_gguf
    model, tok, _ = from_gguf(args.model)
    problems = arith.heldout_problems(args.n)
    assert all(arith.is_test(a, b) for a, b in problems)
    t0 = time.time()
    if args.check_tokenizer and not check_tokenizer(args.engine, args.model, tok, problems[:args.check_tokenizer]):
        sys.exit(1)
    ok, exact, wrong = 0, 0, []
    if args.torch:
        import torch
        torch.set_num_threads(2)
        eos = tok.id(arith.EOS)
        outs = {}
        groups = {}
        for a, b in problems:
            p = tok.encode(arith.chat_prompt(arith.user_prompt(a, b)))
            groups.setdefault(len(p), []).append((a, b, p))
        for items in groups.values():
            res = model.greedy(torch.tensor([x[2] for x in items]), args.max_tokens, eos)
            for (a, b, _), o in zip(items, res):
                outs[(a, b)] = o
        results = [(a, b, outs[(a, b)]) for a, b in problems]
    else:
        results = []
        for a, b in problems:
            ids, _ = engine_generate(args.engine, args.model, a, b, args.max_tokens)
            results.append((a, b, ids))
    for i, (a, b, ids) in enumerate(results):
        text = tok.decode(ids)
        got = arith.parse_answer(text)
        if i < args.show:
            print(f"--- {a} + {b}:\n{text}")
        exact += text == arith.completion(a, b)
        if got == a + b:
            ok += 1
        else:
            wrong.append((a, b, got))
    mode = "torch" if args.torch else f"engine {args.engine}"
    print(f"accuracy {ok}/{len(problems)} = {ok / len(problems):.3f} ({mode}, greedy, {time.time() - t0:.0f}s); "
          f"whole trace identical to the reference steps: {exact}/{len(problems)}")
    for a, b, got in wrong[:10]:
        print(f"  wrong: {a} + {b} = {a + b}, model said {got}")


if __name__ == "__main__":
    main()
