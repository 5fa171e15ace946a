"""Qwen2-architecture decoder in PyTorch, and its conversion to/from GGUF.

Per block: x += o(attn(RoPE(q(n1 x)), RoPE(k(n1 x)), v(n1 x))); x += down(silu(gate(n2 x)) * up(n2 x)),
n1/n2 RMSNorm; q/k/v have biases, o none; NEOX-style RoPE (rotate halves of each
head); grouped-query attention: query head h reads KV head h // (n_head / n_kv_head).
Final RMSNorm, then logits = h @ token_embd^T (output tied to the embedding).
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gguf


class Config:
    def __init__(self, vocab_size, n_layer=6, d_model=128, n_head=4, n_kv_head=2, d_ff=352,
                 context_length=256, rope_base=10000.0, rms_eps=1e-6):
        self.vocab_size, self.n_layer, self.d_model = vocab_size, n_layer, d_model
        self.n_head, self.n_kv_head, self.d_ff = n_head, n_kv_head, d_ff
        self.context_length, self.rope_base, self.rms_eps = context_length, rope_base, rms_eps
        self.head_dim = d_model // n_head

    def as_dict(self):
        return dict(self.__dict__)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    """x: (B, H, T, D); NEOX style: pairs (i, i + D/2)."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.attn_norm = RMSNorm(c.d_model, c.rms_eps)
        self.q = nn.Linear(c.d_model, c.n_head * c.head_dim, bias=True)
        self.k = nn.Linear(c.d_model, c.n_kv_head * c.head_dim, bias=True)
        self.v = nn.Linear(c.d_model, c.n_kv_head * c.head_dim, bias=True)
        self.o = nn.Linear(c.n_head * c.head_dim, c.d_model, bias=False)
        self.ffn_norm = RMSNorm(c.d_model, c.rms_eps)
        self.gate = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.up = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.down = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x, cos, sin, cache=None):
        c = self.c
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
        k = self.k(h).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        v = self.v(h).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        rep = c.n_head // c.n_kv_head
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c.head_dim)
        mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, c.n_head * c.head_dim)
        x = x + self.o(y)
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Qwen2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = RMSNorm(c.d_model, c.rms_eps)
        inv = 1.0 / (c.rope_base ** (torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim))
        ang = torch.arange(c.context_length, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled residual projections (GPT-2 style)
            nn.init.normal_(b.o.weight, std=0.02 / math.sqrt(2 * c.n_layer))
            nn.init.normal_(b.down.weight, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, caches=None, pos0=0):
        T = ids.shape[1]
        cos = self.cos[pos0:pos0 + T]
        sin = self.sin[pos0:pos0 + T]
        x = self.embed(ids)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.t()

    @torch.no_grad()
    def greedy(self, prompt_ids, max_new, stop_id):
        """prompt_ids: (B, T) equal-length prompts. Returns a list of new-id lists."""
        caches = [dict() for _ in self.blocks]
        logits = self(prompt_ids, caches, 0)
        pos = prompt_ids.shape[1]
        B = prompt_ids.shape[0]
        out = [[] for _ in range(B)]
        done = [False] * B
        nxt = logits[:, -1].argmax(-1)
        for _ in range(max_new):
            for i in range(B):
                if not done[i]:
                    out[i].append(int(nxt[i]))
                    done[i] = int(nxt[i]) == stop_id
            if all(done) or pos >= self.c.context_length:
                break
            logits = self(nxt[:, None], caches, pos)
            pos += 1
            nxt = logits[:, -1].argmax(-1)
        return out


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def _np(t):
    return t.detach().cpu().float().numpy()


def to_gguf(model, tok, path, name, bos_id, eos_id, pad_id):
    c = model.c
    V = gguf.Value
    meta = {
        "general.architecture": V(gguf.STRING, "qwen2"),
        "general.name": V(gguf.STRING, name),
        "general.alignment": V(gguf.UINT32, 32),
        "general.file_type": V(gguf.UINT32, 0),
        "qwen2.block_count": V(gguf.UINT32, c.n_layer),
        "qwen2.context_length": V(gguf.UINT32, c.context_length),
        "qwen2.embedding_length": V(gguf.UINT32, c.d_model),
        "qwen2.feed_forward_length": V(gguf.UINT32, c.d_ff),
        "qwen2.attention.head_count": V(gguf.UINT32, c.n_head),
        "qwen2.attention.head_count_kv": V(gguf.UINT32, c.n_kv_head),
        "qwen2.rope.freq_base": V(gguf.FLOAT32, float(c.rope_base)),
        "qwen2.attention.layer_norm_rms_epsilon": V(gguf.FLOAT32, float(c.rms_eps)),
        "tokenizer.ggml.model": V(gguf.STRING, "gpt2"),
        "tokenizer.ggml.pre": V(gguf.STRING, "qwen2"),
        "tokenizer.ggml.tokens": V(gguf.ARRAY, tok.tokens, gguf.STRING),
        "tokenizer.ggml.token_type": V(gguf.ARRAY, tok.token_types, gguf.INT32),
        "tokenizer.ggml.merges": V(gguf.ARRAY, [f"{l} {r}" for l, r in tok.merges], gguf.STRING),
        "tokenizer.ggml.bos_token_id": V(gguf.UINT32, bos_id),
        "tokenizer.ggml.eos_token_id": V(gguf.UINT32, eos_id),
        "tokenizer.ggml.padding_token_id": V(gguf.UINT32, pad_id),
        "tokenizer.ggml.add_bos_token": V(gguf.BOOL, False),
    }
    t = {"token_embd.weight": _np(model.embed.weight)}
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = _np(b.attn_norm.weight)
        t[p + "attn_q.weight"] = _np(b.q.weight)
        t[p + "attn_q.bias"] = _np(b.q.bias)
        t[p + "attn_k.weight"] = _np(b.k.weight)
        t[p + "attn_k.bias"] = _np(b.k.bias)
        t[p + "attn_v.weight"] = _np(b.v.weight)
        t[p + "attn_v.bias"] = _np(b.v.bias)
        t[p + "attn_output.weight"] = _np(b.o.weight)
        t[p + "ffn_norm.weight"] = _np(b.ffn_norm.weight)
        t[p + "ffn_gate.weight"] = _np(b.gate.weight)
        t[p + "ffn_up.weight"] = _np(b.up.weight)
        t[p + "ffn_down.weight"] = _np(b.down.weight)
    t["output_norm.weight"] = _np(model.norm.weight)
    gguf.write(path, meta, t)


def from_gguf(path):
    """Rebuilds (model, tokenizer) from a GGUF file written by to_gguf."""
    import bpe
    meta, t = gguf.read(path)
    g = lambda k: meta["qwen2." + k]
    c = Config(vocab_size=len(meta["tokenizer.ggml.tokens"]), n_layer=g("block_count"),
               d_model=g("embedding_length"), n_head=g("attention.head_count"),
               n_kv_head=g("attention.head_count_kv"), d_ff=g("feed_forward_length"),
               context_length=g("context_length"), rope_base=g("rope.freq_base"),
               rms_eps=g("attention.layer_norm_rms_epsilon"))
    m = Qwen2(c)
    T = lambda n: torch.from_numpy(np.array(t[n], dtype=np.float32))
    with torch.no_grad():
        m.embed.weight.copy_(T("token_embd.weight"))
        for i, b in enumerate(m.blocks):
            p = f"blk.{i}."
            b.attn_norm.weight.copy_(T(p + "attn_norm.weight"))
            for mod, n in ((b.q, "attn_q"), (b.k, "attn_k"), (b.v, "attn_v")):
                mod.weight.copy_(T(p + n + ".weight"))
                mod.bias.copy_(T(p + n + ".bias"))
            b.o.weight.copy_(T(p + "attn_output.weight"))
            b.ffn_norm.weight.copy_(T(p + "ffn_norm.weight"))
            b.gate.weight.copy_(T(p + "ffn_gate.weight"))
            b.up.weight.copy_(T(p + "ffn_up.weight"))
            b.down.weight.copy_(T(p + "ffn_down.weight"))
        m.norm.weight.copy_(T("output_norm.weight"))
    merges = [tuple(s.split(" ", 1)) for s in meta["tokenizer.ggml.merges"]]
    tok = bpe.Tokenizer(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"], merges)
    return m, tok, meta
