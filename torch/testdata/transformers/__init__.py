"""A stand-in for Hugging Face transformers, for tests where it is not installed: the part of its API
trainer.py uses (AutoModelForCausalLM.from_pretrained, a model called with input_ids whose output has
.logits of every position, .config.tie_word_embeddings, gradient_checkpointing_enable,
.model.layers), computed by the trainer's own CausalLM (hfmodel.py). It checks the trainer's transformers path
(its calls, all-position logits, parameter names), not transformers itself."""
import types

from hfmodel import CausalLM, load_folder


class _Model(CausalLM):
    def forward(self, input_ids):
        return types.SimpleNamespace(logits=self.model.norm(self.body(input_ids)) @ self.head().T)

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
