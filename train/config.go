// Package train runs the two FSPO training stages over tokenized few-shot
// examples: few-shot Pref-FT (maximum likelihood of the preferred completion)
// and few-shot preference optimization (IPO by default) against a frozen
// reference model. It checkpoints, resumes bit-exactly, and logs metrics. It
// holds no loss math: that is package pref.
package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"fspo/model"
	"fspo/pref"
	"fspo/tensor"
)

// Config is one training stage. The defaults (Default) were chosen by the
// sweep recorded in the project README; a config file and flags override them.
type Config struct {
	// Stage is "sft" (few-shot Pref-FT) or "pref" (preference optimization
	// against the frozen initial model).
	Stage string `json:"stage" yaml:"stage"`
	// Objective of the pref stage: "ipo" (the paper's, on summed log-probs),
	// "ipo_norm", "dpo" or "cdpo"; Beta and Smoothing are its parameters.
	Objective string  `json:"objective" yaml:"objective"`
	Beta      float64 `json:"beta" yaml:"beta"`
	Smoothing float64 `json:"smoothing" yaml:"smoothing"`

	Optimizer   string  `json:"optimizer" yaml:"optimizer"` // "adamw" or "rmsprop"
	LR          float64 `json:"lr" yaml:"lr"`
	Schedule    string  `json:"schedule" yaml:"schedule"` // "cosine", "linear" or "constant", after a linear warm-up
	Warmup      int64   `json:"warmup" yaml:"warmup"`     // steps of linear warm-up, at most half the run
	MinLRRatio  float64 `json:"min_lr_ratio" yaml:"min_lr_ratio"`
	WeightDecay float64 `json:"weight_decay" yaml:"weight_decay"`
	Clip        float64 `json:"clip" yaml:"clip"` // global gradient-norm clip; 0: off

	Batch  int     `json:"batch" yaml:"batch"`   // examples per step
	Epochs float64 `json:"epochs" yaml:"epochs"` // passes over the examples (the paper: one)
	Steps  int64   `json:"steps" yaml:"steps"`   // overrides Epochs when > 0
	Seed   int64   `json:"seed" yaml:"seed"`

	CheckpointEvery int64 `json:"checkpoint_every" yaml:"checkpoint_every"` // steps between checkpoints
	LogEvery        int64 `json:"log_every" yaml:"log_every"`               // steps between metric lines

	// LoRA, when its rank is set, trains a low-rank adapter over the frozen
	// initial model instead of every weight.
	LoRA LoRAConfig `json:"lora,omitzero" yaml:"lora"`
	// Recompute keeps only each layer's input in the forward pass and
	// recomputes the rest in backward (activation checkpointing): far less
	// memory for about a third more time.
	Recompute bool `json:"recompute,omitempty" yaml:"recompute"`
}

// LoRAConfig is a low-rank adapter (Hu et al., 2021) to train: rank r,
// scale alpha/r, on the named matrices of every layer (model.LoRATargets).
// Dropout is 0. The pref stage's reference is the initial model, which is
// the adapted model before its first step (B starts at zero): its
// log-probs are scored once, so no second copy of the model is kept.
type LoRAConfig struct {
	Rank    int      `json:"rank" yaml:"rank"`
	Alpha   float64  `json:"alpha" yaml:"alpha"`
	Targets []string `json:"targets" yaml:"targets"`
	// BaseDType is the type the frozen base is held in while the adapter
	// trains: f32 (""), f16, bf16 or q8_0 (model.SetDType). Its forward
	// products then run as inference's do (BF16 on AVX-512 BF16 tiles, the
	// activations rounded to BF16 as they enter them; Q8_0 quantizing them to
	// 8 bits), its input gradients on a transposed copy of the same values;
	// the adapter and everything else stay F32. The run's model.fspo is the
	// base's held values widened, with the adapter merged.
	BaseDType string `json:"base_dtype,omitempty" yaml:"base_dtype"`
}

// baseDType is BaseDType parsed (F32 when unset).
func (l LoRAConfig) baseDType() (tensor.DType, error) {
	if l.BaseDType == "" {
		return tensor.F32, nil
	}
	return tensor.ParseDType(l.BaseDType)
}

// On reports whether an adapter is trained.
func (l LoRAConfig) On() bool { return l.Rank > 0 }

// Default returns the defaults for a stage. IPO's β 0.05 (a target
// log-ratio margin of 1/(2β) = 10 nats) and the learning rates come from
// the README's sweep on the stories domain.
func Default(stage string) Config {
	c := Config{
		Stage: stage, Objective: "ipo", Beta: 0.05,
		Optimizer: "adamw", LR: 2e-3, Schedule: "cosine", Warmup: 20, MinLRRatio: 0.1,
		Clip: 1, Batch: 8, Epochs: 1, Seed: 1, CheckpointEvery: 50, LogEvery: 10,
	}
	if stage == "pref" {
		c.LR = 3e-4
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var bad []string
	if c.Stage != "sft" && c.Stage != "pref" {
		bad = append(bad, fmt.Sprintf("stage: %q is not sft or pref", c.Stage))
	}
	if c.Stage == "pref" {
		if err := c.objective().Validate(); err != nil {
			bad = append(bad, fmt.Sprintf("objective: %v", err))
		}
	}
	if c.Optimizer != "adamw" && c.Optimizer != "rmsprop" {
		bad = append(bad, fmt.Sprintf("optimizer: %q is not adamw or rmsprop", c.Optimizer))
	}
	if !(c.LR > 0) {
		bad = append(bad, fmt.Sprintf("lr: %g must be positive", c.LR))
	}
	switch c.Schedule {
	case "cosine", "linear", "constant":
	default:
		bad = append(bad, fmt.Sprintf("schedule: %q is not cosine, linear or constant", c.Schedule))
	}
	if c.Warmup < 0 || c.MinLRRatio < 0 || c.MinLRRatio > 1 || c.WeightDecay < 0 || c.Clip < 0 {
		bad = append(bad, "warmup, min_lr_ratio (0..1), weight_decay and clip must not be negative")
	}
	if c.Batch < 1 {
		bad = append(bad, fmt.Sprintf("batch: %d must be at least 1", c.Batch))
	}
	if c.Steps <= 0 && !(c.Epochs > 0) {
		bad = append(bad, "steps or epochs: one must be positive")
	}
	if c.LoRA.Rank < 0 {
		bad = append(bad, fmt.Sprintf("lora.rank: %d must not be negative (0: no adapter)", c.LoRA.Rank))
	}
	if c.LoRA.On() {
		if !(c.LoRA.Alpha > 0) {
			bad = append(bad, fmt.Sprintf("lora.alpha: %g must be positive", c.LoRA.Alpha))
		}
		if len(c.LoRA.Targets) == 0 {
			bad = append(bad, "lora.targets: none given")
		}
		for _, t := range c.LoRA.Targets {
			if !slices.Contains(model.LoRATargets, t) {
				bad = append(bad, fmt.Sprintf("lora.targets: %q is not one of %s", t, strings.Join(model.LoRATargets, ", ")))
			}
		}
	}
	if dt, err := c.LoRA.baseDType(); err != nil {
		bad = append(bad, "lora.base_dtype: "+err.Error())
	} else if dt != tensor.F32 && !c.LoRA.On() {
		bad = append(bad, fmt.Sprintf("lora.base_dtype: %q needs an adapter (lora.rank > 0): every weight trains in f32", c.LoRA.BaseDType))
	}
	if c.CheckpointEvery < 1 || c.LogEvery < 1 {
		bad = append(bad, "checkpoint_every and log_every must be at least 1")
	}
	if len(bad) > 0 {
		return fmt.Errorf("train config: %s", strings.Join(bad, "; "))
	}
	return nil
}

func (c Config) objective() pref.Objective {
	return pref.Objective{Kind: c.Objective, Beta: c.Beta, Smoothing: c.Smoothing}
}

// LoadConfig overlays a YAML or JSON file on c; unknown keys are errors that
// name the file and the key.
func LoadConfig(path string, c Config) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("train config: %w", err)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("train config %s: %w", path, err)
		}
	default:
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
			return c, fmt.Errorf("train config %s: %w", path, err)
		}
	}
	return c, nil
}
