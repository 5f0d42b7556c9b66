package eval

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"fspo/ckpt"
	"fspo/episode"
	"fspo/gguf"
	"fspo/hf"
	"fspo/model"
	"fspo/modelpath"
	"fspo/pref"
	"fspo/runcard"
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

	FSPOOnPolicy:    episode.Plain,
	FSPOCOTOnPolicy: episode.COT,

	FSPOCOTGiven: episode.COT,
}

// loaded is one model with where it came from.
type loaded struct {
	path  string // the model file
	model *model.Model
	card  *runcard.Card // the run card (nil for llama2.c files and untrained checkpoints)
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
	if !st.IsDir() || hf.IsFolder(path) {
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
		if l.card, _, err = runcard.FromMeta(cp.Meta); err != nil {
			return nil, fmt.Errorf("load model %s: %w", file, err)
		}
	} else if hf.IsFolder(file) {
		if l.model, _, err = hf.Load(file); err != nil {
			return nil, err
		}
	} else if gguf.IsGGUF(file) {
		if l.model, _, err = gguf.Load(file); err != nil {
			return nil, err
		}
	} else if l.model, err = model.Load(file); err != nil {
		return nil, err
	}
	if ms.byPath == nil {
		ms.byPath = map[string]*loaded{}
	}
	ms.byPath[file] = l
	return l, nil
}

// resolvePrompt fills the shots and layout left unset (0, "") from the
// run cards of the trained methods' models, checks the set ones and each
// method's variant against them (a contradiction is an error naming both
// values, or with c.ForcePrompt a warning), and falls back to DefaultShots
// and DefaultLayout when no card sets them.
func resolvePrompt(c Config, ms *models) (Config, error) {
	for _, method := range TrainedMethods {
		path, ok := c.Runs[method]
		if !ok {
			continue
		}
		l, err := ms.load(path)
		if err != nil {
			return c, fmt.Errorf("eval %s: %w", method, err)
		}
		given := runcard.Prompt{Variant: string(variantOf[method]), Layout: c.Layout, Shots: c.Shots}
		p, err := l.card.Reconcile(l.path, given, c.ForcePrompt, func(w string) { c.progress("%s: %s", method, w) })
		if err != nil {
			return c, fmt.Errorf("eval %s: %w", method, err)
		}
		c.Layout, c.Shots = p.Layout, p.Shots
	}
	if c.Shots == 0 {
		c.Shots = DefaultShots
	}
	if c.Layout == "" {
		c.Layout = DefaultLayout
	}
	return c, nil
}

// objectiveOf is the run's preference objective as its card records it
// (loss and β), else IPO with the configured default β; fromRun says
// whether β came from the run.
func objectiveOf(l *loaded, def float64) (obj pref.Objective, fromRun bool) {
	obj = pref.Objective{Kind: pref.IPO, Beta: def}
	if l.card == nil {
		return obj, false
	}
	if isOneOf(l.card.Train.Loss, pref.Kinds) {
		obj.Kind = l.card.Train.Loss
	}
	if l.card.Train.Beta > 0 {
		obj.Beta, fromRun = l.card.Train.Beta, true
	}
	return obj, fromRun
}

// referenceFor is the reference model of a preference-trained method, in
// order: Config.Refs; the model the run was initialised from (checkpoint
// card's init, which fspo train records and which the pref stage freezes
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
	if l.card != nil && l.card.Init.Path != "" {
		p := l.card.Init.Path
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
