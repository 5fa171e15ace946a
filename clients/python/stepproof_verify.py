#!/usr/bin/python3
"""Independent verifier for StepProof proof bundles (stepproof.bundle/v1).

Written from docs/FORMAT.md alone, apart from the C++ code: its own step
record and trace header encoder, RFC 9162 Merkle hashing and proof checks,
C2SP signed-note and checkpoint parsing, and Ed25519 through Debian's
python3-cryptography. Python 3 standard library otherwise. Run it with
/usr/bin/python3 (Debian's interpreter, which has python3-cryptography).

  stepproof_verify.py --key VKEY bundle.json
  stepproof_verify.py --key-file verifier_key.txt bundle.json
  stepproof_verify.py --vectors tests/provenance/vectors/vectors.json

Exit status: 0 verified; 1 verification failed (the message says which check);
2 usage or I/O error. With --expect-failure, 0 iff verification failed.
"""

import argparse
import base64
import binascii
import hashlib
import json
import re
import struct
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover
    sys.stderr.write("stepproof_verify: needs python3-cryptography "
                     "(apt-get install python3-cryptography; run /usr/bin/python3)\n")
    sys.exit(2)

BUNDLE_FORMAT = "stepproof.bundle/v1"
PROMISE_TYPE = "stepproof.promise/v1"
FINAL_EXTENSION = "stepproof.final"
RECORD_VERSION = 1
HEADER_VERSION = 1
KINDS = {"header": 0, "reasoning": 1, "answer": 2}
MAX_TEXT = 1 << 20
MAX_TOKENS = 1 << 18
MAX_FINGERPRINT = 1 << 16
MAX_HEADER_STRING = 256
MAX_PROMPT = 1 << 20
MAX_SIGNATURES = 16
EM_DASH_PREFIX = "\u2014 "


class VerificationError(Exception):
    pass


def fail(msg):
    raise VerificationError(msg)


# ---------------------------------------------------------------- encodings

def b64_canonical(s, what):
    if not isinstance(s, str):
        fail(f"{what}: expected a base64 string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        fail(f"{what}: not valid base64")
    if base64.b64encode(raw).decode() != s:
        fail(f"{what}: not canonical padded base64")
    return raw


def hex_fixed(s, n, what):
    if not isinstance(s, str) or not re.fullmatch(r"[0-9a-f]{%d}" % (2 * n), s):
        fail(f"{what}: expected {2 * n} lowercase hex characters")
    return bytes.fromhex(s)


def u(v, what, bits=64):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 1 << bits:
        fail(f"{what}: expected an integer in [0, 2^{bits})")
    return v


def f32_bits(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        fail(f"{what}: expected a number")
    packed = struct.pack(">f", float(v))
    if struct.unpack(">f", packed)[0] != float(v):
        fail(f"{what}: not exactly an IEEE-754 binary32 value")
    return packed


def lp_bytes(b):  # u32 length prefix
    return struct.pack(">I", len(b)) + b


def utf8(s, what, max_len, allow_empty=True):
    if not isinstance(s, str):
        fail(f"{what}: expected a string")
    b = s.encode("utf-8", errors="strict")  # lone surrogates raise
    if len(b) > max_len:
        fail(f"{what}: longer than {max_len} bytes")
    if not allow_empty and not b:
        fail(f"{what}: must not be empty")
    return b


def check_keys(obj, allowed, required, what):
    if not isinstance(obj, dict):
        fail(f"{what}: expected an object")
    for k in obj:
        if k not in allowed:
            fail(f"{what}.{k}: unknown field")
    for k in required:
        if k not in obj:
            fail(f"{what}.{k}: missing")


def rfc3339_ms(s, what):
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z",
                     s if isinstance(s, str) else "")
    if not m:
        fail(f"{what}: not YYYY-MM-DDTHH:MM:SS.mmmZ")
    import datetime
    y, mo, d, h, mi, sec, ms = (int(x) for x in m.groups())
    try:
        dt = datetime.datetime(y, mo, d, h, mi, sec, ms * 1000,
                               tzinfo=datetime.timezone.utc)
    except ValueError as e:
        fail(f"{what}: {e}")
    return dt


def valid_key_name(name):
    return (name != "" and "+" not in name and
            not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in name))


def encode_header(h, what="record.header"):
    allowed = {"model_digest", "tokenizer_digest", "model_name", "sampling",
               "prompt", "prompt_commitment", "backend", "device",
               "start_time", "key_name", "key_id"}
    check_keys(h, allowed, allowed - {"prompt", "prompt_commitment"}, what)
    s = h["sampling"]
    sk = {"sampler", "greedy", "temperature", "top_p", "top_k", "seed",
          "max_new_tokens"}
    check_keys(s, sk, sk, what + ".sampling")
    if not isinstance(s["greedy"], bool):
        fail(what + ".sampling.greedy: expected true or false")
    out = bytes([HEADER_VERSION])
    out += hex_fixed(h["model_digest"], 32, what + ".model_digest")
    out += hex_fixed(h["tokenizer_digest"], 32, what + ".tokenizer_digest")
    out += lp_bytes(utf8(h["model_name"], what + ".model_name",
                         MAX_HEADER_STRING, False))
    out += lp_bytes(utf8(s["sampler"], what + ".sampling.sampler",
                         MAX_HEADER_STRING, False))
    out += bytes([1 if s["greedy"] else 0])
    out += f32_bits(s["temperature"], what + ".sampling.temperature")
    out += f32_bits(s["top_p"], what + ".sampling.top_p")
    out += struct.pack(">I", u(s["top_k"], what + ".sampling.top_k", 32))
    out += struct.pack(">Q", u(s["seed"], what + ".sampling.seed"))
    out += struct.pack(">I", u(s["max_new_tokens"],
                               what + ".sampling.max_new_tokens", 32))
    if ("prompt" in h) == ("prompt_commitment" in h):
        fail(what + ": exactly one of prompt and prompt_commitment")
    if "prompt" in h:
        out += b"\x00" + lp_bytes(utf8(h["prompt"], what + ".prompt", MAX_PROMPT))
    else:
        out += b"\x01" + hex_fixed(h["prompt_commitment"], 32,
                                   what + ".prompt_commitment")
    out += lp_bytes(utf8(h["backend"], what + ".backend", MAX_HEADER_STRING, False))
    out += lp_bytes(utf8(h["device"], what + ".device", MAX_HEADER_STRING))
    rfc3339_ms(h["start_time"], what + ".start_time")
    out += lp_bytes(h["start_time"].encode())
    name = h["key_name"]
    if not isinstance(name, str) or not valid_key_name(name):
        fail(what + ".key_name: not a valid key name")
    out += lp_bytes(utf8(name, what + ".key_name", MAX_HEADER_STRING))
    out += hex_fixed(h["key_id"], 4, what + ".key_id")
    return out


def encode_record(r, what="record"):
    """The canonical step record encoding (docs/FORMAT.md) from JSON fields."""
    allowed = {"version", "trace_id", "index", "kind", "start_ms", "end_ms",
               "text", "header", "token_ids", "logprob_bits", "fingerprint",
               "salt"}
    check_keys(r, allowed, {"version", "trace_id", "index", "kind", "start_ms",
                            "end_ms", "token_ids", "salt"}, what)
    if r["version"] != RECORD_VERSION or isinstance(r["version"], bool):
        fail(f"{what}.version: unsupported version {r['version']!r}")
    if r["kind"] not in KINDS:
        fail(f"{what}.kind: unknown kind {r['kind']!r}")
    kind = KINDS[r["kind"]]
    index = u(r["index"], what + ".index")
    if (kind == 0) != (index == 0):
        fail(f"{what}: the header is exactly the record at index 0")
    start, end = u(r["start_ms"], what + ".start_ms"), u(r["end_ms"], what + ".end_ms")
    if start > end:
        fail(f"{what}.end_ms: before start_ms")
    if kind == 0:
        if "text" in r or "header" not in r:
            fail(f"{what}: a header record has \"header\", not \"text\"")
        body = encode_header(r["header"], what + ".header")
        if start or end or r["token_ids"] or "logprob_bits" in r or "fingerprint" in r:
            fail(f"{what}: the header record has times 0 and no tokens, "
                 "log-probabilities or fingerprint")
    else:
        if "header" in r or "text" not in r:
            fail(f"{what}: a step record has \"text\", not \"header\"")
        body = utf8(r["text"], what + ".text", MAX_TEXT)
    tokens = r["token_ids"]
    if not isinstance(tokens, list) or len(tokens) > MAX_TOKENS:
        fail(f"{what}.token_ids: expected an array of at most {MAX_TOKENS}")
    out = bytes([RECORD_VERSION])
    out += hex_fixed(r["trace_id"], 16, what + ".trace_id")
    out += struct.pack(">QBQQ", index, kind, start, end)
    out += lp_bytes(body)
    out += struct.pack(">I", len(tokens))
    out += b"".join(struct.pack(">I", u(t, what + ".token_ids[]", 32)) for t in tokens)
    if "logprob_bits" in r:
        bits = r["logprob_bits"]
        if not isinstance(bits, list) or len(bits) != len(tokens):
            fail(f"{what}.logprob_bits: one per token id")
        out += b"\x01" + b"".join(struct.pack(">I", u(b, what + ".logprob_bits[]", 32))
                                  for b in bits)
    else:
        out += b"\x00"
    if "fingerprint" in r:
        fp = b64_canonical(r["fingerprint"], what + ".fingerprint")
        if len(fp) > MAX_FINGERPRINT:
            fail(f"{what}.fingerprint: longer than {MAX_FINGERPRINT} bytes")
        out += b"\x01" + lp_bytes(fp)
    else:
        out += b"\x00"
    out += hex_fixed(r["salt"], 32, what + ".salt")
    return out


# ------------------------------------------------------------- RFC 9162

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """RFC 9162 2.1.1 MTH over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 2.1.3.2; None if the proof is malformed."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_consistency(size1, size2, root1, root2, proof):
    """RFC 9162 2.1.4.2."""
    if size1 == 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    if not path:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


# ------------------------------------------------- C2SP keys, notes, checkpoints

class Key:
    def __init__(self, vkey):
        parts = vkey.split("+", 2)  # the base64 key may hold "+"
        if len(parts) != 3:
            fail(f"verifier key {vkey!r}: want name+keyid+base64key")
        name, kid, b64 = parts
        if not valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", kid):
            fail(f"verifier key {vkey!r}: bad name or key id")
        blob = b64_canonical(b64, "verifier key")
        if len(blob) != 33 or blob[0] != 0x01:
            fail("verifier key: not an Ed25519 (type 0x01) key")
        self.name, self.pub = name, blob[1:]
        self.key_id = struct.unpack(
            ">I", hashlib.sha256(name.encode() + b"\n" + blob).digest()[:4])[0]
        if self.key_id != int(kid, 16):
            fail("verifier key: key id does not match name and key")
        self.label = f"{name}+{self.key_id:08x}"
        self._key = Ed25519PublicKey.from_public_bytes(self.pub)

    def verify(self, msg, sig):
        try:
            self._key.verify(sig, msg)
            return True
        except InvalidSignature:
            return False


def open_note(note, key, what):
    """The text of `note` if it carries a valid signature by `key`."""
    if not isinstance(note, str):
        fail(f"{what}: expected a string")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        fail(f"{what}: malformed note (control character)")
    split = note.rfind("\n\n")
    if split < 0:
        fail(f"{what}: malformed note (no blank line before signatures)")
    text, sigs = note[:split + 1], note[split + 2:]
    if not sigs or not sigs.endswith("\n"):
        fail(f"{what}: malformed note (signature block)")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        fail(f"{what}: malformed note (more than {MAX_SIGNATURES} signatures)")
    verified = False
    for line in lines:
        if not line.startswith(EM_DASH_PREFIX):
            fail(f"{what}: malformed note (signature line prefix)")
        name, sep, b64 = line[len(EM_DASH_PREFIX):].partition(" ")
        if not sep or not valid_key_name(name):
            fail(f"{what}: malformed note (signature line)")
        blob = b64_canonical(b64, what + " signature")
        if len(blob) < 5:
            fail(f"{what}: malformed note (short signature)")
        if name != key.name or struct.unpack(">I", blob[:4])[0] != key.key_id:
            continue
        if not key.verify(text.encode(), blob[4:]):
            fail(f"{what} signature does not verify with key {key.label}")
        verified = True
    if not verified:
        fail(f"{what} has no signature by key {key.label}")
    return text


def parse_checkpoint(text, what):
    if not text.endswith("\n"):
        fail(f"{what}: no final newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0]:
        fail(f"{what}: want origin, size and root lines")
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1]) or int(lines[1]) >= 1 << 64:
        fail(f"{what}: size is not canonical decimal")
    root = b64_canonical(lines[2], what + " root")
    if len(root) != 32:
        fail(f"{what}: root is not 32 bytes")
    if any(not e for e in lines[3:]):
        fail(f"{what}: empty extension line")
    return {"origin": lines[0], "size": int(lines[1]), "root": root,
            "extensions": lines[3:]}


def split_trace_origin(origin, what):
    at = origin.rfind("/trace/")
    tid = origin[at + 7:] if at > 0 else ""
    if at <= 0 or not re.fullmatch(r"[0-9a-f]{32}", tid):
        fail(f"{what}: origin {origin!r} is not <log origin>/trace/<trace id>")
    return origin[:at], tid


def open_checkpoint(note, key, what):
    return parse_checkpoint(open_note(note, key, what), what)


def check_promise(promise_note, key, trace_note, trace_cp, log_origin):
    lines = open_note(promise_note, key, "promise")[:-1].split("\n")
    if len(lines) != 8 or lines[0] != PROMISE_TYPE:
        fail(f"promise: not a {PROMISE_TYPE} text of 8 lines")
    _, plog, porigin, psize, proot, pleaf, ptime, pdelay = lines
    if plog != log_origin:
        fail(f"promise log origin {plog!r} is not the trace's log origin {log_origin!r}")
    if porigin != trace_cp["origin"]:
        fail("promise trace origin does not match the trace checkpoint")
    if not re.fullmatch(r"0|[1-9][0-9]*", psize) or int(psize) != trace_cp["size"]:
        fail("promise trace size does not match the trace checkpoint")
    if b64_canonical(proot, "promise root") != trace_cp["root"]:
        fail("promise trace root does not match the trace checkpoint")
    if b64_canonical(pleaf, "promise leaf hash") != leaf_hash(trace_note.encode()):
        fail("promise leaf hash does not match the trace checkpoint note")
    rfc3339_ms(ptime, "promise submission time")
    if not re.fullmatch(r"0|[1-9][0-9]*", pdelay):
        fail("promise maximum delay is not canonical decimal")


# ------------------------------------------------------------------- bundle

def hash_list(v, what):
    if not isinstance(v, list):
        fail(f"{what}: expected an array")
    return [hex_fixed(h, 32, f"{what}[{i}]") for i, h in enumerate(v)]


def verify_bundle(b, key):
    check_keys(b, {"format", "record", "encoded_record", "leaf_index",
                   "inclusion_proof", "trace_checkpoint", "log", "promise",
                   "anchor"},
               {"format", "record", "encoded_record", "leaf_index",
                "inclusion_proof", "trace_checkpoint"}, "bundle")
    if b["format"] != BUNDLE_FORMAT:
        fail(f"bundle format {b['format']!r} is not {BUNDLE_FORMAT}")
    r = b["record"]
    encoded = b64_canonical(b["encoded_record"], "encoded_record")
    if encode_record(r) != encoded:
        fail("record fields do not re-encode to encoded_record")
    leaf_index = u(b["leaf_index"], "leaf_index")
    if leaf_index != r["index"]:
        fail("leaf_index does not match the record's index")
    trace_note = b["trace_checkpoint"]
    cp = open_checkpoint(trace_note, key, "trace checkpoint")
    log_origin, tid = split_trace_origin(cp["origin"], "trace checkpoint")
    if tid != r["trace_id"]:
        fail(f"trace checkpoint origin names trace {tid} but the record is of "
             f"trace {r['trace_id']}")
    if r["kind"] == "header":
        h = r["header"]
        if h["key_name"] != key.name or int(h["key_id"], 16) != key.key_id:
            fail("trace header names a key other than the verifying key")
    if leaf_index >= cp["size"]:
        fail("leaf index is outside the trace checkpoint's tree")
    root = root_from_inclusion(leaf_index, cp["size"], leaf_hash(encoded),
                               hash_list(b["inclusion_proof"], "inclusion_proof"))
    if root != cp["root"]:
        fail("inclusion proof does not lead to checkpoint root")
    checked = ["record encoding", "trace inclusion", "trace checkpoint signature"]
    if "log" in b:
        log = b["log"]
        check_keys(log, {"leaf_index", "inclusion_proof", "checkpoint"},
                   {"leaf_index", "inclusion_proof", "checkpoint"}, "log")
        if FINAL_EXTENSION not in cp["extensions"]:
            fail("log inclusion needs the final trace checkpoint")
        lcp = open_checkpoint(log["checkpoint"], key, "log checkpoint")
        if lcp["origin"] != log_origin:
            fail(f"log checkpoint origin {lcp['origin']!r} is not the trace's "
                 f"log origin {log_origin!r}")
        lroot = root_from_inclusion(u(log["leaf_index"], "log.leaf_index"),
                                    lcp["size"], leaf_hash(trace_note.encode()),
                                    hash_list(log["inclusion_proof"],
                                              "log.inclusion_proof"))
        if lroot != lcp["root"]:
            fail("log inclusion proof does not lead to log checkpoint root")
        checked.append("log inclusion")
    if "promise" in b:
        check_promise(b["promise"], key, trace_note, cp, log_origin)
        checked.append("inclusion promise")
    return (f"OK: {r['kind']} record {r['index']} of trace {r['trace_id']} "
            f"({', '.join(checked)}; key {key.label})")


# ------------------------------------------------------------------ vectors

def check_vectors(v):
    """Recomputes every value in vectors.json from its fields."""
    key = Key(v["key"]["verifier_key"])
    # The key must be the one derived from the published seed (RFC 8032).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    priv = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["key"]["seed"]))
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    if pub != key.pub or pub.hex() != v["key"]["public_key"]:
        fail("vectors: public key is not the one derived from the seed")
    leaves = []
    for i, rec in enumerate(v["records"]):
        enc = encode_record(rec["fields"], f"records[{i}].fields")
        if enc.hex() != rec["encoding"]:
            fail(f"vectors: record {i} encoding differs from the recomputed one")
        if leaf_hash(enc).hex() != rec["leaf_hash"]:
            fail(f"vectors: record {i} leaf hash differs")
        leaves.append(leaf_hash(enc))
    if mth(leaves).hex() != v["root"]:
        fail("vectors: root differs from MTH of the leaf hashes")
    origin = f"{v['log_origin']}/trace/{v['trace_id']}"
    for n, note in enumerate(v["checkpoints"], start=1):
        cp = open_checkpoint(note, key, f"checkpoint {n}")
        if cp["origin"] != origin or cp["size"] != n or cp["root"] != mth(leaves[:n]) \
                or cp["extensions"]:
            fail(f"vectors: checkpoint {n} does not state ({origin}, {n}, MTH)")
    fcp = open_checkpoint(v["final_checkpoint"], key, "final checkpoint")
    if (fcp["origin"], fcp["size"], fcp["root"], fcp["extensions"]) != \
            (origin, len(leaves), mth(leaves), [FINAL_EXTENSION]):
        fail("vectors: final checkpoint contents")
    for c in v["consistency_proofs"]:
        m, n = c["from_size"], c["to_size"]
        if not verify_consistency(m, n, mth(leaves[:m]), mth(leaves[:n]),
                                  hash_list(c["proof"], "consistency proof")):
            fail(f"vectors: consistency proof {m} -> {n} does not verify")
    log = v["log"]
    log_leaves = [leaf_hash(bytes.fromhex(x)) for x in log["leaves"]]
    if bytes.fromhex(log["leaves"][log["trace_leaf_index"]]) != \
            v["final_checkpoint"].encode():
        fail("vectors: the log leaf is not the final checkpoint note")
    if mth(log_leaves).hex() != log["root"]:
        fail("vectors: log root differs from MTH of the log leaves")
    lcp = open_checkpoint(log["checkpoint"], key, "log checkpoint")
    if (lcp["origin"], lcp["size"], lcp["root"].hex()) != \
            (v["log_origin"], len(log_leaves), log["root"]):
        fail("vectors: log checkpoint contents")
    if root_from_inclusion(log["trace_leaf_index"], len(log_leaves),
                           log_leaves[log["trace_leaf_index"]],
                           hash_list(log["inclusion_proof"], "log proof")) != \
            lcp["root"]:
        fail("vectors: log inclusion proof does not lead to the log root")
    check_promise(v["promise"], key, v["final_checkpoint"], fcp, v["log_origin"])
    return (f"OK: vectors ({len(leaves)} records, root {v['root'][:16]}..., "
            f"checkpoints, consistency, log inclusion, promise)")


def c2sp_example():
    """The C2SP signed-note spec's example must verify."""
    key = Key("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    note = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2V"
            "YRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
    open_note(note, key, "C2SP example note")


def strict_json(text, what):
    def no_dupes(pairs):
        d = {}
        for k, val in pairs:
            if k in d:
                fail(f"{what}: duplicate key {k!r}")
            d[k] = val
        return d
    try:
        return json.loads(text, object_pairs_hook=no_dupes)
    except json.JSONDecodeError as e:
        fail(f"{what}: not valid JSON ({e})")


def main(argv):
    ap = argparse.ArgumentParser(
        description="Verify a StepProof proof bundle offline (independent "
                    "implementation of docs/FORMAT.md).")
    ap.add_argument("bundle", nargs="?", help="bundle JSON file")
    ap.add_argument("--key", help="the log's C2SP verifier key")
    ap.add_argument("--key-file", help="file holding the verifier key")
    ap.add_argument("--vectors", help="check a vectors.json file instead")
    ap.add_argument("--expect-failure", action="store_true",
                    help="exit 0 only if verification fails")
    args = ap.parse_args(argv)
    try:
        c2sp_example()
        if args.vectors:
            with open(args.vectors, encoding="utf-8") as f:
                msg = check_vectors(strict_json(f.read(), "vectors"))
        else:
            if not args.bundle or bool(args.key) == bool(args.key_file):
                ap.error("give a bundle and exactly one of --key, --key-file")
            vkey = args.key
            if args.key_file:
                with open(args.key_file, encoding="utf-8") as f:
                    vkey = f.read().strip()
            with open(args.bundle, encoding="utf-8") as f:
                text = f.read()
            msg = verify_bundle(strict_json(text, "bundle"), Key(vkey))
    except OSError as e:
        sys.stderr.write(f"stepproof_verify: {e}\n")
        return 2
    except (VerificationError, UnicodeError, KeyError, TypeError) as e:
        if isinstance(e, KeyError):
            e = f"missing field {e}"
        print(f"FAILED: {e}")
        return 0 if args.expect_failure else 1
    print(msg)
    return 1 if args.expect_failure else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
