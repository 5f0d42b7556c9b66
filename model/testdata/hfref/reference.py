#!/usr/bin/python3
"""Float64 PyTorch reference for Hugging Face Llama, Qwen2 and Qwen3 models.

Implements the modelling equations as transformers' LlamaForCausalLM,
Qwen2ForCausalLM and Qwen3ForCausalLM compute them (rotate_half RoPE with
llama3 rope scaling, q/k/v biases, per-head q/k RMSNorm, grouped-query
attention by repeating key/value heads, tied or untied lm_head), reading a
Hugging Face folder (config.json + model.safetensors or a sharded index)
with its own safetensors reader. Independent of the Go engine.

For each token sequence it writes the log-softmax of the next-token logits at
every position, and the gradient of the summed log-prob of the sequence's
own next tokens (positions 0..n-2 predicting 1..n-1), summed over sequences,
with respect to every parameter, summarised per tensor (Hugging Face name and
layout): L2 norm, sum, the dot product with the fixed direction
u[i] = sin(1.3*i + 0.5) over the flattened tensor, and 16 sampled values at
indices i*len//16.

With a third argument, a PEFT LoRA adapter folder (adapter_config.json +
adapter_model.safetensors), each adapted projection computes
x·Wᵀ + (lora_alpha/r)·(x·Aᵀ)·Bᵀ as PEFT's LoRA Linear does (dropout 0), and
the gradients are those of the adapter's tensors (PEFT names), the base frozen.

Run with Debian's python3-torch:
    /usr/bin/python3 model/testdata/hfref/reference.py FOLDER OUT.json [ADAPTER]
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)

SEQUENCES_SEED = 12345


def read_safetensors(path):
    """Returns {name: float64 tensor} of a .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[start:end])
        dtype = info["dtype"]
        if dtype == "F32":
            t = torch.frombuffer(buf, dtype=torch.float32)
        elif dtype == "F16":
            t = torch.frombuffer(buf, dtype=torch.float16)
        elif dtype == "BF16":
            bits = torch.frombuffer(buf, dtype=torch.int16).to(torch.int32) & 0xFFFF
            t = (bits << 16).view(torch.float32)
        else:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} not supported")
        out[name] = t.to(torch.float64).reshape(info["shape"]).clone()
    return out


def read_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for name in files:
            weights.update(read_safetensors(os.path.join(folder, name)))
    else:
        weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    return cfg, weights


def read_adapter(folder):
    """Returns (scale, {module path below the model: (A, B)}, {PEFT name: tensor})."""
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    tensors = read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    pairs = {}
    for name, t in tensors.items():
        module, part = name[len("base_model.model."):].rsplit(".lora_", 1)
        pairs.setdefault(module, {})[part.split(".")[0]] = t
    return cfg["lora_alpha"] / cfg["r"], {m: (ab["A"], ab["B"]) for m, ab in pairs.items()}, tensors


def inv_frequencies(cfg, head_dim):
    """RoPE inverse frequencies, with rope_scaling type llama3 applied."""
    base = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind != "llama3":
        raise ValueError(f"rope_scaling {kind} not supported")
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    orig = rs["original_max_position_embeddings"]
    out = []
    for f in inv.tolist():
        wavelength = 2 * math.pi / f
        if wavelength > orig / low:  # long wavelengths: stretched
            out.append(f / factor)
        elif wavelength < orig / high:  # short ones: kept
            out.append(f)
        else:  # in between: linear in 1/wavelength
            s = (orig / wavelength - low) / (high - low)
            out.append((1 - s) * f / factor + s * f)
    return torch.tensor(out)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, W, tokens, lora=None):
    """Logits (T, vocab) of one sequence; lora is read_adapter's (scale, pairs)."""
    D = cfg["hidden_size"]
    H, KVH = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or D // H
    eps = cfg["rms_norm_eps"]
    T = len(tokens)
    inv = inv_frequencies(cfg, hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]  # (1, T, hd)
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."

        def proj(name, inp):
            y = inp @ W[p + name + ".weight"].T
            if lora is not None and p + name in lora[1]:
                a, b_ = lora[1][p + name]
                y = y + lora[0] * ((inp @ a.T) @ b_.T)
            b = W.get(p + name + ".bias")
            return y if b is None else y + b

        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = proj("self_attn.q_proj", h).view(T, H, hd)
        k = proj("self_attn.k_proj", h).view(T, KVH, hd)
        v = proj("self_attn.v_proj", h).view(T, KVH, hd)
        if p + "self_attn.q_norm.weight" in W:  # Qwen3: per-head norm before RoPE
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, T, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KVH, dim=0)  # repeat_kv
        v = v.repeat_interleave(H // KVH, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * hd)
        x = x + proj("self_attn.o_proj", o)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = proj("mlp.gate_proj", h)
        up = proj("mlp.up_proj", h)
        x = x + proj("mlp.down_proj", torch.nn.functional.silu(gate) * up)
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings", False):
        head = W["model.embed_tokens.weight"]
    return x @ head.T


def sequences(vocab):
    """Two fixed token sequences (lengths 16 and 9) from a small LCG."""
    state, out = SEQUENCES_SEED, []
    for n in (16, 9):
        seq = []
        for _ in range(n):
            state = (state * 1103515245 + 12345) % (1 << 31)
            seq.append(state % vocab)
        out.append(seq)
    return out


def summary(g):
    flat = g.reshape(-1)
    n = flat.numel()
    u = torch.sin(1.3 * torch.arange(n, dtype=torch.float64) + 0.5)
    idx = [i * n // 16 for i in range(16)]
    return {"shape": list(g.shape), "l2": flat.norm().item(), "sum": flat.sum().item(),
            "dot_u": (flat * u).sum().item(), "index": idx, "values": [flat[i].item() for i in idx]}


def main():
    folder, out_path = sys.argv[1], sys.argv[2]
    cfg, W = read_folder(folder)
    lora, trained = None, W
    if len(sys.argv) > 3:
        scale, pairs, trained = read_adapter(sys.argv[3])
        lora = (scale, pairs)
    for t in trained.values():
        t.requires_grad_(True)
    seqs = sequences(cfg["vocab_size"])
    total = torch.zeros(())
    rows = []
    for seq in seqs:
        logp = torch.log_softmax(forward(cfg, W, seq, lora), dim=-1)
        rows.append(logp.detach().tolist())
        total = total + logp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].sum()
    total.backward()
    tied = "lm_head.weight" not in W
    result = {
        "source": "model/testdata/hfref/reference.py (float64 PyTorch %s) on %s%s" % (torch.__version__, os.path.basename(os.path.normpath(folder)),
                                                                                   " with the adapter " + os.path.basename(os.path.normpath(sys.argv[3])) if lora else ""),
        "tied": tied,
        "sequences": seqs,
        "logprobs": rows,
        "sum_logprob": total.item(),
        "grads": {name: summary(t.grad) for name, t in sorted(trained.items())},
    }
    with open(out_path, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
