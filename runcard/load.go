package runcard

import (
	"fmt"
	"os"

	"fspo/ckpt"
)

// Load reads the card of the model file at path: nil (and no error) for a
// file that is not an fspo checkpoint (a llama2.c model, a model folder) or a checkpoint
// describing no trained model.
func Load(path string) (*Card, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, nil // a model folder (Hugging Face's): no card
	}
	isCkpt, err := ckpt.Sniff(path)
	if err != nil {
		return nil, fmt.Errorf("run card: %w", err)
	}
	if !isCkpt {
		return nil, nil
	}
	cp, err := ckpt.Load(path)
	if err != nil {
		return nil, fmt.Errorf("run card: %w", err)
	}
	card, _, err := FromMeta(cp.Meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return card, nil
}
