#!/usr/bin/python3
"""Trains the embedded StepProof model (Qwen2 architecture) on step-by-step addition
and writes it as GGUF v3.

  nice -n 10 /usr/bin/python3 models/train.py --seed 1 --out models/stepproof-arith.gguf

Deterministic for a given --seed and machine: the tokenizer is learned from a fixed
corpus (seed 0, so every seed shares one vocabulary); weights init and the training
stream come from --seed. Checkpoints go to --run-dir every --ckpt-every steps;
--resume continues from the last one.
"""

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import arith  # noqa: E402
import bpe  # noqa: E402
from model import Config, Qwen2, num_params, to_gguf  # noqa: E402

TOKENIZER_CORPUS_SEED = 0
TOKENIZER_CORPUS_SIZE = 3000


def build_tokenizer():
    rng = random.Random(TOKENIZER_CORPUS_SEED)
    texts = [arith.chat_prompt(arith.user_prompt(a, b)) + arith.completion(a, b)
             for a, b in arith.sample_problems(rng, TOKENIZER_CORPUS_SIZE, test=False)]
    return bpe.train(texts, arith.SPECIAL_TOKENS)


def encode_example(tok, a, b):
    p = tok.encode(arith.chat_prompt(arith.user_prompt(a, b)))
    c = tok.encode(arith.completion(a, b))
    return p, c


def make_batch(tok, rng, batch, pad_id):
    # One operand-length pattern per batch keeps padding small.
    da = rng.randint(arith.MIN_DIGITS, arith.MAX_DIGITS)
    db = rng.randint(arith.MIN_DIGITS, arith.MAX_DIGITS)
    seqs, plens = [], []
    for a, b in arith.sample_problems(rng, batch, test=False, digits_a=da, digits_b=db):
        p, c = encode_example(tok, a, b)
        seqs.append(p + c)
        plens.append(len(p))
    T = max(len(s) for s in seqs)
    ids = torch.full((batch, T), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, T - 1), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, plens[i] - 1:len(s) - 1] = True  # predict every completion token
    return ids, mask, int(mask.sum())


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + torch.cos(torch.tensor(frac * 3.141592653589793)).item()))


@torch.no_grad()
def torch_accuracy(model, tok, problems, batch=100):
    """Greedy exact-answer accuracy with PyTorch (prompts grouped by token length)."""
    model.eval()
    eos = tok.id(arith.EOS)
    groups = {}
    for a, b in problems:
        p = tok.encode(arith.chat_prompt(arith.user_prompt(a, b)))
        groups.setdefault(len(p), []).append((a, b, p))
    ok = 0
    for items in groups.values():
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            outs = model.greedy(torch.tensor([x[2] for x in chunk]), 200, eos)
            for (a, b, _), o in zip(chunk, outs):
                ok += arith.parse_answer(tok.decode(o)) == a + b
    model.train()
    return ok / len(problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1, help="weights init and data stream seed")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--d-ff", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run-dir", default="models/runs/seed1")
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=0, help="torch accuracy on 100 held-out problems")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true",
                    help="with --resume: write the GGUF from the last checkpoint and exit")
    ap.add_argument("--out", default="models/stepproof-arith.gguf")
    ap.add_argument("--name", default="stepproof-arith")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.run_dir, exist_ok=True)
    tok = build_tokenizer()
    pad_id = eos_id = tok.id(arith.EOS)
    bos_id = tok.id(arith.BOS)
    cfg = Config(vocab_size=len(tok.tokens), n_layer=args.layers, d_model=args.d_model,
                 n_head=args.heads, n_kv_head=args.kv_heads, d_ff=args.d_ff)
    model = Qwen2(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    rng = random.Random(args.seed)
    step, elapsed0 = 0, 0.0
    ckpt = os.path.join(args.run_dir, "ckpt.pt")
    if args.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        step, elapsed0 = st["step"], st["elapsed"]
        print(f"resumed at step {step}", flush=True)
    print(f"vocab {len(tok.tokens)} merges {len(tok.merges)} params {num_params(model)} "
          f"config {json.dumps(cfg.as_dict())} args {json.dumps(vars(args))}", flush=True)
    heldout = arith.heldout_problems(100)
    if args.export_only:
        args.steps = step
    t0 = time.time() - elapsed0
    loss_ema = 0.0 if args.export_only else None
    while step < args.steps:
        ids, mask, ntok = make_batch(tok, rng, args.batch, pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits[mask], ids[:, 1:][mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        if step % 20 == 0 or step == 1:
            el = time.time() - t0
            print(f"step {step} loss {loss.item():.4f} ema {loss_ema:.4f} lr {lr_at(step - 1, args):.2e} "
                  f"elapsed {el:.0f}s ({el / step:.2f}s/step)", flush=True)
        if args.eval_every and step % args.eval_every == 0:
            print(f"step {step} torch heldout-100 accuracy {torch_accuracy(model, tok, heldout):.3f}", flush=True)
        if step % args.ckpt_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.getstate(),
                        "torch_rng": torch.get_rng_state(), "step": step,
                        "elapsed": time.time() - t0}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    el = time.time() - t0
    print(f"done {step} steps in {el:.0f}s, final loss ema {loss_ema:.4f}", flush=True)
    to_gguf(model, tok, args.out, args.name, bos_id, eos_id, pad_id)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", flush=True)
    print(f"torch heldout-100 accuracy {torch_accuracy(model, tok, heldout):.3f}", flush=True)


if __name__ == "__main__":
    main()
