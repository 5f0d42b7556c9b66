// Package runcard is the contract between the stages: one typed description
// of a trained model (its base model, the prompt it was trained with, the
// loss and the data) that fspo train writes into every checkpoint and that
// eval, serve and info read.
//
// The card is stored as JSON under one key of the checkpoint's meta
// (MetaKey). Checkpoints written before the card existed carry a string
// map instead ("init", "variant", "layout", "shots", "train_config",
// "data"); FromMeta reads those into a card too.
package runcard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
)

// MetaKey is the checkpoint meta key holding the card's JSON.
const MetaKey = "run_card"

// Version is the card format this package writes; FromMeta reads it and
// the legacy string map (version 0).
const Version = 1

// TemplateEpisode names fspo's own few-shot text templates (package
// episode: the variant and layout say which). A chat template of a Hugging
// Face model will be named here by its own name.
const TemplateEpisode = "episode"

// Card describes one trained model.
type Card struct {
	Version int    `json:"version"`
	Base    Model  `json:"base"`           // the pretrained model the chain of stages started from
	Init    Model  `json:"init"`           // the model this stage started from (Base for a first stage)
	Prompt  Prompt `json:"prompt"`         // how the model's prompts are written
	Train   Train  `json:"train"`          // the stage and its loss
	Data    Data   `json:"data"`           // what it was trained on
	FSPO    string `json:"fspo,omitempty"` // version of fspo that trained it (Build)
	// Later: the adapter (LoRA rank, α, target modules) of a model trained
	// as one; a nil field keeps today's full fine-tuning cards unchanged.
}

// Model names a model file and its content.
type Model struct {
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // of the checkpoint file (or the embedded bytes)
}

// Prompt is the prompt the model was trained with.
type Prompt struct {
	// Template is the text template family: TemplateEpisode today; a chat
	// template name for chat models.
	Template string `json:"template"`
	Variant  string `json:"variant"` // plain, cot, preferred-only, zero-shot, oracle
	Layout   string `json:"layout"`  // compact or paper
	Shots    int    `json:"shots"`   // examples of the user per prompt (0 for zero-shot)
}

// Train is the training stage.
type Train struct {
	Stage string  `json:"stage"`          // sft or pref
	Loss  string  `json:"loss,omitempty"` // the pref stage's objective: ipo, ipo_norm, dpo, cdpo ("sft" for the sft stage)
	Beta  float64 `json:"beta,omitempty"` // the objective's β
	// Engine trained the stage: "" for fspo's own, "torch" for the PyTorch trainer.
	Engine string `json:"engine,omitempty"`
	// Config is the complete training configuration (train.Config's JSON);
	// a resume checks it is unchanged.
	Config json.RawMessage `json:"config,omitempty"`
}

// Data is the training data.
type Data struct {
	Dir            string `json:"dir,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"` // of manifest.json
	Items          string `json:"items,omitempty"`           // hash of the tokenized examples
}

// Meta returns the checkpoint meta holding the card.
func (c *Card) Meta() (map[string]string, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("run card: %w", err)
	}
	return map[string]string{MetaKey: string(raw)}, nil
}

// FromMeta reads the card of a checkpoint's meta: the typed card, or the
// legacy string map. ok is false when the meta describes no trained model
// (a converted or base checkpoint).
func FromMeta(meta map[string]string) (card *Card, ok bool, err error) {
	if raw, has := meta[MetaKey]; has {
		c := &Card{}
		if err := json.Unmarshal([]byte(raw), c); err != nil {
			return nil, false, fmt.Errorf("run card: meta %s: %w", MetaKey, err)
		}
		if c.Version < 1 || c.Version > Version {
			return nil, false, fmt.Errorf("run card: version %d, this fspo reads 1 to %d", c.Version, Version)
		}
		return c, true, nil
	}
	return fromLegacy(meta)
}

// fromLegacy reads the string map fspo train wrote before the card.
func fromLegacy(meta map[string]string) (*Card, bool, error) {
	legacy := false
	for _, k := range []string{"init", "variant", "layout", "shots", "train_config"} {
		_, has := meta[k]
		legacy = legacy || has
	}
	if !legacy {
		return nil, false, nil
	}
	c := &Card{Version: 0, Prompt: Prompt{Template: TemplateEpisode, Variant: meta["variant"], Layout: meta["layout"]},
		Init: Model{Path: meta["init"]}, Data: Data{Dir: meta["data"], Items: meta["items"]}}
	c.Base = c.Init
	if s, has := meta["shots"]; has {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, false, fmt.Errorf("run card: legacy meta shots %q: %w", s, err)
		}
		c.Prompt.Shots = n
	}
	if raw, has := meta["train_config"]; has {
		var tc struct {
			Stage     string  `json:"stage"`
			Objective string  `json:"objective"`
			Beta      float64 `json:"beta"`
		}
		if err := json.Unmarshal([]byte(raw), &tc); err != nil {
			return nil, false, fmt.Errorf("run card: legacy meta train_config: %w", err)
		}
		c.Train = Train{Stage: tc.Stage, Loss: tc.Objective, Beta: tc.Beta, Config: json.RawMessage(raw)}
		if tc.Stage == "sft" {
			c.Train.Loss = "sft"
		}
	}
	return c, true, nil
}

// FileSHA256 is the hex SHA-256 of a file's bytes; of a folder (a Hugging
// Face model), of its files' names and bytes in name order.
func FileSHA256(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	h := sha256.New()
	if !st.IsDir() {
		if err := hashFile(h, path); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	// a model folder: the names and contents of its files, in name order
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fmt.Fprintf(h, "%s\x00", e.Name())
		if err := hashFile(h, filepath.Join(path, e.Name())); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	return nil
}

// Build is the version of the running fspo: the module version and, when
// built from a repository, the commit (with "+dirty" for local changes).
func Build() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + dirty
	}
	return v
}

// ConflictError is a prompt setting given that contradicts the card.
type ConflictError struct {
	Model string // the model file
	Field string // variant, layout or shots
	Card  string // the value the model was trained with
	Given string // the value given
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s was trained with %s %s, given %s %s (match it, or --force-prompt to override)", e.Model, e.Field, e.Card, e.Field, e.Given)
}

// Reconcile returns the prompt to use with the card's model: each field of
// given that is set (non-empty, non-zero) is checked against the card, each
// unset one is taken from it. A contradiction is a *ConflictError naming
// both values; with force, the given value wins and warn receives the
// conflict instead. A card's shots of 0 (a zero-shot model) accept any
// shots. A nil card returns given unchanged.
func (c *Card) Reconcile(model string, given Prompt, force bool, warn func(string)) (Prompt, error) {
	if c == nil {
		return given, nil
	}
	out := given
	var conflicts []*ConflictError
	str := func(field string, g *string, card string) {
		switch {
		case *g == "":
			*g = card
		case card != "" && *g != card:
			conflicts = append(conflicts, &ConflictError{Model: model, Field: field, Card: card, Given: *g})
		}
	}
	str("template", &out.Template, c.Prompt.Template)
	str("variant", &out.Variant, c.Prompt.Variant)
	str("layout", &out.Layout, c.Prompt.Layout)
	switch {
	case out.Shots == 0:
		out.Shots = c.Prompt.Shots
	case c.Prompt.Shots != 0 && out.Shots != c.Prompt.Shots:
		conflicts = append(conflicts, &ConflictError{Model: model, Field: "shots", Card: strconv.Itoa(c.Prompt.Shots), Given: strconv.Itoa(out.Shots)})
	}
	if len(conflicts) == 0 {
		return out, nil
	}
	if !force {
		return Prompt{}, conflicts[0]
	}
	for _, e := range conflicts {
		if warn != nil {
			warn(fmt.Sprintf("warning: --force-prompt: %s was trained with %s %s, using %s", e.Model, e.Field, e.Card, e.Given))
		}
	}
	return out, nil
}
