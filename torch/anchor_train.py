#!/usr/bin/python3
"""PyTorch speed anchor for fspo's training figures (`fspo bench --model M`).

A plain nn.Module Llama (per-layer nn.Linear weights, RMSNorm, RoPE, grouped-query
attention, SwiGLU, tied embedding) trained on random tokens with full-sequence
cross-entropy and torch.optim.AdamW(foreach=True): forward, backward and the
optimizer step, timed per step after a warm-up step. Also times the machine's
sgemm with torch.mm on square matrices (the peak the training rate is read
against). Prints one JSON object.

  anchor_train.py [--shape 180m] [--batch 2] [--seq 128] [--steps 5] [--threads 1,2]

Shapes: 180m = SmolLM2-135M's layers with the Llama-3.1 vocabulary (576 wide,
30 layers, 9 heads, 3 KV heads, 1536 feed-forward, 128,256 tokens), the random
model of fspo's speed benchmarks; tiny = a 2-layer model for a quick check.
Run it with a Python whose torch is PyTorch (Debian: /usr/bin/python3 with
python3-torch), from a folder without a `torch` directory in it. Debian's
torch multiplies through the system BLAS: install libopenblas0-pthread (the
reference libblas3 is ~16x slower) and set OPENBLAS_NUM_THREADS=1 (with 2
BLAS threads under torch's 2 OpenMP threads the two pools oversubscribe the
cores: 22 instead of 30 tokens/s on the 180m shape with 2 cores).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "180m": dict(dim=576, hidden=1536, layers=30, heads=9, kv_heads=3, vocab=128256, theta=100000.0),
    "tiny": dict(dim=64, hidden=172, layers=2, heads=4, kv_heads=2, vocab=512, theta=10000.0),
}


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    """RoPE on (B, T, H, hs) in the half-split layout of Hugging Face's Llama."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hs = c["dim"], c["dim"] // c["heads"]
        self.heads, self.kv_heads, self.hs = c["heads"], c["kv_heads"], hs
        self.attn_norm, self.mlp_norm = RMSNorm(d), RMSNorm(d)
        self.q = nn.Linear(d, c["heads"] * hs, bias=False)
        self.k = nn.Linear(d, c["kv_heads"] * hs, bias=False)
        self.v = nn.Linear(d, c["kv_heads"] * hs, bias=False)
        self.o = nn.Linear(c["heads"] * hs, d, bias=False)
        self.gate = nn.Linear(d, c["hidden"], bias=False)
        self.up = nn.Linear(d, c["hidden"], bias=False)
        self.down = nn.Linear(c["hidden"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = rotate(self.q(h).view(B, T, self.heads, self.hs), cos, sin)
        k = rotate(self.k(h).view(B, T, self.kv_heads, self.hs), cos, sin)
        v = self.v(h).view(B, T, self.kv_heads, self.hs)
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, hs)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hs) + mask
        a = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o(a)
        h = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["dim"])
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def forward(self, toks):
        T = toks.shape[1]
        hs = self.c["dim"] // self.c["heads"]
        inv = 1.0 / (self.c["theta"] ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
        ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)[None, :, None, :]  # (1, T, 1, hs/2)
        cos, sin = ang.cos(), ang.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.emb(toks)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.emb.weight.T  # tied classifier


def train_rate(c, batch, seq, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Llama(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, foreach=True)
    toks = torch.randint(3, c["vocab"], (batch, seq + 1))

    def step():
        logits = model(toks[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), toks[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    first = step()  # warm-up: allocations and the optimizer's state
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    return params, first, times


def sgemm_peak(threads, n=1024, seconds=1.0):
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="180m", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    c = SHAPES[a.shape]
    out = {"torch": torch.__version__, "shape": a.shape, "config": c, "batch": a.batch, "seq": a.seq, "steps": a.steps,
           "optimizer": "torch.optim.AdamW(foreach=True)", "train_tokens_per_s": {}, "step_s": {}, "sgemm_gflops_1024": {}}
    for th in (int(t) for t in a.threads.split(",")):
        params, first, times = train_rate(c, a.batch, a.seq, a.steps, th)
        out["params"], out["first_loss"] = params, first
        out["step_s"][str(th)] = [round(t, 4) for t in times]
        out["train_tokens_per_s"][str(th)] = a.batch * a.seq / statistics.median(times)
        out["sgemm_gflops_1024"][str(th)] = sgemm_peak(th)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
