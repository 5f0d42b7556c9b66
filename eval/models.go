package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"fspo/ckpt"
	"fspo/episode"
	"fspo/model"
	"fspo/modelpath"
)

// variantOf is the prompt each method is evaluated with: the one its model
// was trained with, or for the base model the one the method names.
var variantOf = map[string]episode.Variant{
	Base:     "", // the query's story opening continued as a story (see generator.prompt)
	FewShot:  episode.Plain,
	PrefFT:   episode.Plain,
	IPO:      episode.ZeroShot,
	FSPO:     episode.Plain,
	FSPOCOT:  episode.COT,
	OracleBK: "",
}

// loaded is one model with where it came from.
type loaded struct {
	path  string // the model file
	model *model.Model
	meta  map[string]string // checkpoint meta (nil for llama2.c files)
}

// models loads each model file once.
type models struct{ byPath map[string]*loaded }

// modelFile is the model file of a run folder (its final model.fspo) or the
// file itself.
func modelFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	if !st.IsDir() {
		return filepath.Abs(path)
	}
	f := filepath.Join(path, modelpath.CheckpointFile)
	if _, err := os.Stat(f); err != nil {
		if _, cerr := os.Stat(filepath.Join(path, "checkpoint.fspo")); cerr == nil {
			return "", fmt.Errorf("run %s has a checkpoint but no %s: its training has not finished (rerun fspo train with the same --out)", path, modelpath.CheckpointFile)
		}
		return "", fmt.Errorf("run %s: %w", path, err)
	}
	return filepath.Abs(f)
}

func (ms *models) load(path string) (*loaded, error) {
	file, err := modelFile(path)
	if err != nil {
		return nil, err
	}
	if l, ok := ms.byPath[file]; ok {
		return l, nil
	}
	l := &loaded{path: file}
	head := make([]byte, len(ckpt.Magic))
	if f, err := os.Open(file); err == nil {
		n, _ := f.Read(head)
		f.Close()
		head = head[:n]
	}
	if bytes.Equal(head, []byte(ckpt.Magic)) {
		cp, err := ckpt.Load(file)
		if err != nil {
			return nil, fmt.Errorf("load model: %w", err)
		}
		if l.model, err = model.FromCheckpoint(cp); err != nil {
			return nil, fmt.Errorf("load model %s: %w", file, err)
		}
		l.meta = cp.Meta
	} else if l.model, err = model.Load(file); err != nil {
		return nil, err
	}
	if ms.byPath == nil {
		ms.byPath = map[string]*loaded{}
	}
	ms.byPath[file] = l
	return l, nil
}

// checkTrainedLike checks that a run was trained with the prompt the method
// is evaluated with, where its checkpoint records it (fspo train writes
// "variant", "layout" and "shots" into the meta).
func checkTrainedLike(method string, l *loaded, c Config) error {
	want := variantOf[method]
	if v, ok := l.meta["variant"]; ok && v != string(want) {
		return fmt.Errorf("eval %s: %s was trained with the %q prompt, the method is evaluated with %q", method, l.path, v, want)
	}
	if v, ok := l.meta["layout"]; ok && v != c.Layout {
		return fmt.Errorf("eval %s: %s was trained with the %q layout, evaluating with %q (set the layout to match)", method, l.path, v, c.Layout)
	}
	if v, ok := l.meta["shots"]; ok && want != episode.ZeroShot && v != strconv.Itoa(c.Shots) {
		return fmt.Errorf("eval %s: %s was trained with %s shots, evaluating with %d (set shots to match)", method, l.path, v, c.Shots)
	}
	return nil
}

// betaOf reads β from the run's training config (checkpoint meta
// "train_config"), else returns the configured default and false.
func betaOf(l *loaded, def float64) (float64, bool, error) {
	raw, ok := l.meta["train_config"]
	if !ok {
		return def, false, nil
	}
	var tc struct {
		Beta *float64 `json:"beta"`
	}
	if err := json.Unmarshal([]byte(raw), &tc); err != nil {
		return 0, false, fmt.Errorf("model %s: meta train_config: %w", l.path, err)
	}
	if tc.Beta == nil || !(*tc.Beta > 0) {
		return def, false, nil
	}
	return *tc.Beta, true, nil
}

// referenceFor is the reference model of a preference-trained method, in
// order: Config.Refs; the model the run was initialised from (checkpoint
// meta "init", which fspo train records and which the pref stage freezes
// as its reference, METHOD.md §3); else the default — the stage-1 model
// (prefft) for fspo, the base model for ipo. fspo_cot has no default: its
// stage-1 model is a COT run, not prefft. When an ipo run's meta init is a
// folder without a model (what a run started without an explicit initial
// model records), its reference is the base model, and the returned source
// says so.
func referenceFor(method string, l *loaded, c Config) (path, source string, err error) {
	if p, ok := c.Refs[method]; ok {
		return p, "configured", nil
	}
	if p := l.meta["init"]; p != "" {
		file, err := resolveInit(p)
		switch {
		case err == nil:
			return file, "run meta init", nil
		case method == IPO:
			return c.Base, fmt.Sprintf("default: the base model (the run's meta init %s is not a model)", p), nil
		}
		return "", "", fmt.Errorf("reference of %s: meta init of %s: %w (give the reference explicitly)", method, l.path, err)
	}
	switch method {
	case FSPO:
		if p, ok := c.Runs[PrefFT]; ok {
			return p, "default: the prefft run", nil
		}
		return "", "", fmt.Errorf("reference of fspo: no prefft run and no init in %s's meta (give the reference explicitly)", l.path)
	case IPO:
		return c.Base, "default: the base model", nil
	}
	return "", "", fmt.Errorf("reference of %s: %s records no init (give the reference explicitly)", method, l.path)
}

// resolveInit finds the model file a recorded init path names: a model
// file, a run folder, or a model folder (checkpoint and tokenizer).
func resolveInit(p string) (string, error) {
	if f, err := modelFile(p); err == nil {
		return f, nil
	}
	paths, err := modelpath.Resolve(p, os.Getenv)
	if err != nil {
		return "", err
	}
	return paths.Checkpoint, nil
}
