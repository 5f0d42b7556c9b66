"""fspo's PyTorch model for the trainer (trainer.py): Hugging Face folders read and written
(config.json + .safetensors, F32 / F16 / BF16 read, F32 written) and a Llama / Qwen2 / Qwen3 causal LM
whose parameter names are the folder's, with optional activation checkpointing per decoder layer."""
import glob
import json
import math
import os
import struct

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

# ---------------------------------------------------------------- Hugging Face folders

_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def load_safetensors(path):
    """{name: float32 tensor} of one .safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            if e["dtype"] not in _DTYPES:
                raise ValueError(f"{path}: tensor {name}: dtype {e['dtype']} is not F32, F16 or BF16")
            lo, hi = e["data_offsets"]
            f.seek(base + lo)
            buf = bytearray(f.read(hi - lo))
            dtype, _ = _DTYPES[e["dtype"]]
            out[name] = torch.frombuffer(buf, dtype=dtype).reshape(e["shape"]).to(torch.float32)
    return out


def save_safetensors(path, tensors):
    """Writes {name: tensor} as F32, names sorted, offsets 8-byte aligned as the format asks."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def load_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    weights = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        weights.update(load_safetensors(path))
    if not weights:
        raise FileNotFoundError(f"{folder}: no .safetensors file")
    return cfg, weights


# ---------------------------------------------------------------- the model (Llama, Qwen2, Qwen3)


def rope_frequencies(cfg, head_dim):
    inv = 1.0 / float(cfg.get("rope_theta", 10000.0)) ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return inv.float()
    if kind != "llama3":
        raise ValueError(f"config.json: rope_scaling {kind!r} is not supported (default or llama3)")
    factor, low, high, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    smooth = ((orig / wavelen - low) / (high - low)).clamp(0, 1)
    scaled = (1 - smooth) * inv / factor + smooth * inv
    return scaled.float()


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, self.H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.KVH = cfg.get("num_key_value_heads") or self.H
        self.hd = cfg.get("head_dim") or D // self.H
        bias = bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2"))
        self.q_proj = nn.Linear(D, self.H * self.hd, bias=bias)
        self.k_proj = nn.Linear(D, self.KVH * self.hd, bias=bias)
        self.v_proj = nn.Linear(D, self.KVH * self.hd, bias=bias)
        self.o_proj = nn.Linear(self.H * self.hd, D, bias=False)
        if cfg.get("model_type") == "qwen3":
            self.q_norm = RMSNorm(self.hd, cfg["rms_norm_eps"])
            self.k_norm = RMSNorm(self.hd, cfg["rms_norm_eps"])

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.hd)
        k = self.k_proj(x).view(B, T, self.KVH, self.hd)
        v = self.v_proj(x).view(B, T, self.KVH, self.hd)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.KVH != self.H:
            k = k.repeat_interleave(self.H // self.KVH, dim=1)
            v = v.repeat_interleave(self.H // self.KVH, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            mask = torch.full((T, T), float("-inf"), device=x.device).triu(1)
            o = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, dim=-1) @ v
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.H * self.hd))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, Fd = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj, self.up_proj, self.down_proj = nn.Linear(D, Fd, bias=False), nn.Linear(D, Fd, bias=False), nn.Linear(Fd, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class CausalLM(nn.Module):
    """A decoder-only model whose state_dict names are the Hugging Face folder's."""

    def __init__(self, cfg, recompute=False):
        super().__init__()
        supported = ("llama", "qwen2", "qwen3", "mistral")
        if cfg.get("model_type") not in supported:
            raise ValueError(f"config.json: model_type {cfg.get('model_type')!r} is not one of {', '.join(supported)}")
        self.cfg, self.recompute = cfg, recompute
        self.model = Body(cfg)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        att = self.model.layers[0].self_attn
        self.register_buffer("inv_freq", rope_frequencies(cfg, att.hd), persistent=False)

    def head(self):
        return self.model.embed_tokens.weight if self.tied else self.lm_head.weight

    def forward(self, tokens, select):
        """Log-probs of tokens[r, p+1] given tokens[r, :p+1] at the (row, position) pairs select."""
        rows, pos = select
        h = self.model.norm(self.body(tokens)[rows, pos])  # only the scored positions reach the vocabulary
        logp = torch.log_softmax((h @ self.head().T).float(), dim=-1)
        return logp.gather(1, tokens[rows, pos + 1][:, None])[:, 0]

    def body(self, tokens):
        """The residual stream after the last layer, before the final norm, at every position."""
        T = tokens.shape[1]
        ang = torch.arange(T, device=tokens.device, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(tokens)
        for layer in self.model.layers:
            if self.recompute and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin)
        return x


def build_model(cfg, folder, weights, recompute):
    """(model, its decoder layer class): transformers' AutoModelForCausalLM when transformers is
    installed (FSPO_TORCH_MODEL=own keeps fspo's module), else CausalLM; weights are loaded by name."""
    hf = None
    if os.environ.get("FSPO_TORCH_MODEL", "auto") != "own":
        try:
            import transformers
        except ImportError:
            transformers = None
        if transformers is not None:
            hf = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
            hf.fspo_hf, hf.tied = True, bool(getattr(hf.config, "tie_word_embeddings", False))
            if recompute:
                hf.gradient_checkpointing_enable()
    model = hf if hf is not None else CausalLM(cfg, recompute=recompute)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not (model.tied and m == "lm_head.weight")]
    unexpected = [u for u in unexpected if not u.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise ValueError(f"init/: tensors missing {missing[:5]}, unexpected {unexpected[:5]}")
    if hf is None:
        return model, DecoderLayer
    return model, type(model.model.layers[0])
