#!/usr/bin/python3
"""Checks a Hugging Face llama folder written by `fspo convert` against
log-probabilities computed elsewhere, using the Hugging Face modelling
equations (LlamaForCausalLM: rotate_half RoPE over the halves of each head,
q/k/v/o/gate/up/down projections under transformers' key names), written
here with PyTorch and this file's own safetensors reader.

  /usr/bin/python3 hf/testdata/hf_llama_check.py FOLDER REFERENCE.json

REFERENCE.json is {"cases": [{"tokens": [...], "next_token_logprobs": [...]}]}
(../shared/models/stories260K/reference-logprobs.json, from llama2.c's C
code, has that form). Prints the largest |Δ log-prob|; exits 1 above 1e-4.
Plain llama only (no rope_scaling, biases or q/k norms).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = bytearray(blob[8 + n :])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[info["dtype"]]
        out[name] = torch.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).to(torch.float64)
    return out


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def forward(cfg, w, toks):
    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hs = cfg.get("head_dim") or d // nh
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    T = len(toks)

    def norm(x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g

    inv = 1.0 / theta ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    x = w["model.embed_tokens.weight"][toks]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, nh, hs)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, hs)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, hs)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
        att = (torch.einsum("thd,shd->hts", q, k) / math.sqrt(hs) + mask).softmax(-1)
        x = x + torch.einsum("hts,shd->thd", att, v).reshape(T, nh * hs) @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        x = x + (F.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    folder, ref = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(folder, "config.json")))
    assert cfg["model_type"] == "llama" and not cfg.get("rope_scaling"), "plain llama only"
    w = read_safetensors(os.path.join(folder, "model.safetensors"))
    worst = 0.0
    for case in json.load(open(ref))["cases"]:
        toks = torch.tensor(case["tokens"])
        lp = forward(cfg, w, toks).log_softmax(-1)[:-1].gather(-1, toks[1:, None])[:, 0]
        worst = max(worst, max(abs(a - b) for a, b in zip(lp.tolist(), case["next_token_logprobs"])))
    print(f"max |logprob - reference| = {worst:.2e}")
    sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
