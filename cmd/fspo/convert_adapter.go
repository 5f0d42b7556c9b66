package main

import (
	"fmt"
	"strings"

	"fspo/ckpt"
	"fspo/gguf"
	"fspo/model"
	"fspo/peft"
	"fspo/runcard"
)

// convertAdapter writes a LoRA adapter checkpoint (a LoRA run's
// adapter.fspo) as a PEFT folder (out not ending in .gguf: for
// transformers' PeftModel and vLLM --enable-lora) or as a llama.cpp GGUF
// LoRA adapter (FILE.gguf, general.type adapter). base names the base model
// in the output (default: the run card's initial model).
func convertAdapter(env *Env, path, out, base string) error {
	cp, err := ckpt.Load(path)
	if err != nil {
		return err
	}
	l, c, err := model.LoRAFromCheckpoint(cp)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if base == "" {
		if card, _, err := runcard.FromMeta(cp.Meta); err == nil && card != nil {
			base = card.Init.Path
		}
	}
	if strings.HasSuffix(out, ".gguf") {
		err = gguf.WriteLoRA(out, c, *l)
	} else {
		err = peft.Write(out, c, l, base)
	}
	if err != nil {
		return fmt.Errorf("convert %s: %w", out, err)
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s (LoRA rank %d, alpha %g, %s; base %s)\n", out, l.Rank, l.Alpha, strings.Join(l.Targets(), ","), base)
	return nil
}
