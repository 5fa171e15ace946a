"""Byte-level BPE tokenizer in the GGUF "gpt2" format with the Qwen2 pre-tokenizer.

Tokenizes exactly as a standard GPT-2 byte-level BPE does (and as llama.cpp does for
tokenizer.ggml.model = "gpt2", tokenizer.ggml.pre = "qwen2"):
  1. special (CONTROL) tokens are matched first, literally, in the text;
  2. the text between them is split by the Qwen2 pre-tokenizer regex;
  3. each pre-token's UTF-8 bytes are mapped to byte-level unicode strings
     (bytes_to_unicode) and merged pair by pair, lowest merge rank first, until no
     ranked pair remains; each resulting string is one token.

Vocabulary layout made by train(): ids 0..255 are the 256 single bytes in byte order,
then one id per merge in rank order, then the special tokens.
"""

import regex

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_PRE = regex.compile(QWEN2_PATTERN)

TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode chars."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
          + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pre_tokenize(text):
    return _PRE.findall(text)


def to_byte_chars(piece):
    return [BYTE_TO_CHAR[b] for b in piece.encode("utf-8")]


class Tokenizer:
    def __init__(self, tokens, token_types, merges):
        """tokens: list of byte-level strings; merges: list of (left, right) strings."""
        self.tokens = list(tokens)
        self.token_types = list(token_types)
        self.merges = list(merges)
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.specials = [t for t, ty in zip(self.tokens, self.token_types)
                         if ty == TOKEN_TYPE_CONTROL]
        # Longest first so that no special token shadows a longer one.
        self._special_re = regex.compile(
            "(" + "|".join(regex.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")"
        ) if self.specials else None
        self._cache = {}

    def bpe(self, piece):
        if piece in self._cache:
            return self._cache[piece]
        word = to_byte_chars(piece)
        while len(word) > 1:
            best, best_rank = None, None
            for i in range(len(word) - 1):
                r = self.ranks.get((word[i], word[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = (word[i], word[i + 1]), r
            if best is None:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = [self.ids[w] for w in word]
        self._cache[piece] = ids
        return ids

    def encode(self, text):
        parts = self._special_re.split(text) if self._special_re else [text]
        out = []
        for part in parts:
            if not part:
                continue
            if part in self.ids and part in self.specials:
                out.append(self.ids[part])
                continue
            for piece in pre_tokenize(part):
                out.extend(self.bpe(piece))
        return out

    def decode(self, ids):
        buf, out = bytearray(), []
        for i in ids:
            t = self.tokens[i]
            if self.token_types[i] == TOKEN_TYPE_CONTROL:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(t)
            else:
                buf.extend(CHAR_TO_BYTE[c] for c in t)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def id(self, token):
        return self.ids[token]


def train(texts, specials, max_merges=400, min_count=2):
    """Learns merges on texts (special tokens removed first). Deterministic:
    most frequent pair first, ties broken by the smaller (left, right) strings."""
    split = regex.compile("(" + "|".join(regex.escape(s) for s in specials) + ")")
    freq = {}
    for text in texts:
        for part in split.split(text):
            if not part or part in specials:
                continue
            for piece in pre_tokenize(part):
                freq[piece] = freq.get(piece, 0) + 1
    words = {p: to_byte_chars(p) for p in freq}
    merges = []
    while len(merges) < max_merges:
        counts = {}
        for p, w in words.items():
            for i in range(len(w) - 1):
                counts[(w[i], w[i + 1])] = counts.get((w[i], w[i + 1]), 0) + freq[p]
        if not counts:
            break
        best = min(counts, key=lambda k: (-counts[k], k))
        if counts[best] < min_count:
            break
        merges.append(best)
        for p, w in words.items():
            merged, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    merged.append(w[i] + w[i + 1])
                    i += 2
                else:
                    merged.append(w[i])
                    i += 1
            words[p] = merged
    tokens = [BYTE_TO_CHAR[b] for b in range(256)] + [l + r for l, r in merges] + list(specials)
    types = [TOKEN_TYPE_NORMAL] * (256 + len(merges)) + [TOKEN_TYPE_CONTROL] * len(specials)
    return Tokenizer(tokens, types, merges)
