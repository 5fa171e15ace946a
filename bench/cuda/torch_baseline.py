#!/usr/bin/env python3
"""PyTorch decode baseline for bench/cuda/cuda_decode_bench (issue 5).

Builds transformers' Qwen2ForCausalLM from DeepSeek-R1-Distill-Qwen-1.5B's
config (hidden 1536, 28 layers, 12 heads, 2 KV heads, FFN 8960, vocab 151936,
untied output), random init, BF16, on the first CUDA device, and times greedy
decoding with a static KV cache at batch 1, 8 and 32: each batch row gets a
32-token prompt, then --steps tokens are decoded one step at a time (a
forward of one token per row plus argmax), the same work per step as the
CUDA engine's benchmark. torch.compile (mode "reduce-overhead", CUDA graphs)
is tried first and eager is used, and reported, when it fails.

Reports tokens/s, ms/step and the weight bytes read per step (every matrix
once plus one embedding row, as the engine's benchmark counts them) per
second. Run on the GPU machine, in the same session as cuda_decode_bench:

    python3 bench/cuda/torch_baseline.py [--batches 1,8,32] [--steps 64]
        [--no-compile]

Needs torch (CUDA build) and transformers (>= 4.45 for StaticCache's
max_batch_size/max_cache_len arguments).
"""

import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.cache_utils import StaticCache

    if not torch.cuda.is_available():
        print("torch_baseline: skipped, torch sees no CUDA device")
        return 0
    dev = torch.device("cuda:0")
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_position_embeddings=131072,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        use_sliding_window=False,
        torch_dtype=torch.bfloat16,
    )
    torch.manual_seed(0)
    with torch.device(dev):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    n_matrix = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2)
    n_embd_table = model.model.embed_tokens.weight.numel()
    weight_bytes = 2 * (n_matrix - n_embd_table + config.hidden_size)

    bw = copy_bandwidth(torch, dev)
    print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, copy bandwidth {bw / 1e9:.1f} GB/s, "
          f"host load {os.getloadavg()[0]:.2f}")

    batches = [int(b) for b in args.batches.split(",")]
    max_len = args.prompt + args.steps + 8

    def step_fn(ids, pos, cache):
        out = model(input_ids=ids, cache_position=pos, past_key_values=cache,
                    use_cache=True, return_dict=True)
        return out.logits[:, -1, :].argmax(dim=-1, keepdim=True)

    compiled = None
    if not args.no_compile:
        try:
            compiled = torch.compile(step_fn, mode="reduce-overhead", fullgraph=True)
        except Exception as e:  # noqa: BLE001 - report and fall back
            print(f"torch.compile unavailable ({e}); eager")

    for batch in batches:
        mode = "compiled" if compiled is not None else "eager"
        fn = compiled if compiled is not None else step_fn
        try:
            tps, ms = run_batch(torch, model, config, StaticCache, fn, step_fn, batch,
                                args.prompt, args.steps, max_len, dev)
        except Exception as e:  # noqa: BLE001 - a failed compile: eager
            if compiled is None:
                raise
            print(f"batch {batch}: compiled run failed ({type(e).__name__}: {e}); eager")
            mode = "eager"
            tps, ms = run_batch(torch, model, config, StaticCache, step_fn, step_fn, batch,
                                args.prompt, args.steps, max_len, dev)
        rate = weight_bytes / (ms * 1e-3)
        print(f"torch {mode:8s} bf16 batch {batch:2d}: {tps:9.1f} tokens/s  {ms:7.3f} ms/step  "
              f"weights {weight_bytes / 1e9:.3f} GB/step  {rate / 1e9:7.1f} GB/s  "
              f"{100 * rate / bw:5.1f}% of copy bandwidth")
        sys.stdout.flush()
    return 0


def copy_bandwidth(torch, dev):
    n = 1 << 30
    a = torch.ones(n, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    best = float("inf")
    for i in range(11):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        stop.record()
        stop.synchronize()
        if i > 0:
            best = min(best, start.elapsed_time(stop))
    del a, b
    return 2.0 * n / (best * 1e-3)


def run_batch(torch, model, config, StaticCache, fn, prefill_fn, batch, prompt, steps, max_len, dev):
    with torch.no_grad():
        cache = StaticCache(config=config, max_batch_size=batch, max_cache_len=max_len,
                            device=dev, dtype=torch.bfloat16)
        ids = torch.randint(0, config.vocab_size, (batch, prompt), device=dev)
        tok = prefill_fn(ids, torch.arange(prompt, device=dev), cache)
        pos = prompt
        for _ in range(3):  # warm-up (compilation, graph capture)
            tok = fn(tok, torch.tensor([pos], device=dev), cache)
            pos += 1
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps - 3):
            tok = fn(tok, torch.tensor([pos], device=dev), cache)
            pos += 1
        torch.cuda.synchronize()
        sec = time.perf_counter() - t0
    n = steps - 3
    return batch * n / sec, 1e3 * sec / n


if __name__ == "__main__":
    sys.exit(main())
