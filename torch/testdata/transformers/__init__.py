"""A stand-in for Hugging Face transformers, for tests where it is not installed: the part of its API
trainer.py uses (AutoModelForCausalLM.from_pretrained, a model called with input_ids whose output has
.logits of every position, .config.tie_word_embeddings, gradient_checkpointing_enable,
.model.layers), computed by trainer.py's own CausalLM. It checks the trainer's transformers path
(its calls, all-position logits, parameter names), not transformers itself."""
import types

import torch
from trainer import CausalLM, load_folder


class _Model(CausalLM):
    def forward(self, input_ids):
        T = input_ids.shape[1]
        ang = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            if self.recompute and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin)
        return types.SimpleNamespace(logits=self.model.norm(x) @ self.head().T)

    def gradient_checkpointing_enable(self):
        self.recompute = True


class AutoModelForCausalLM:
    @staticmethod
    def from_pretrained(folder, torch_dtype=None):
        cfg, weights = load_folder(folder)
        m = _Model(cfg)
        m.load_state_dict(weights, strict=False)
        m.config = types.SimpleNamespace(tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)))
        return m
