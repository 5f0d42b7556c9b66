package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"fspo/episode"
	"fspo/modelpath"
	"fspo/runcard"
	"fspo/serve"
)

// backendFlags are serve's flags for generating on an OpenAI-compatible
// server instead of the embedded engine.
type backendFlags struct {
	url, model, keyEnv string
	timeout            time.Duration
}

// register declares the flags on fs.
func (b *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.url, "backend", "", "generate on this OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, a hosted API), e.g. http://host:8000/v1, instead of the embedded engine; --model then names a run whose run card gives the prompt")
	fs.StringVar(&b.model, "backend-model", "", "the backend's model name (required with --backend)")
	fs.StringVar(&b.keyEnv, "backend-key-env", "", "environment variable holding the backend's API key (default: none sent)")
	fs.DurationVar(&b.timeout, "backend-timeout", 2*time.Minute, "longest a backend generation may take (then 504)")
}

// backendEngine makes the serve engine that forwards to the backend. The
// prompt is the run card's of --model when one is given (a run folder or
// checkpoint: its template, shots, variant and layout; its weights are not
// loaded), else the paper's plain template with up to 4 shots.
func (b backendFlags) engine(env *Env, modelFlag string, given runcard.Prompt, force bool) (*serve.BackendEngine, runcard.Prompt, error) {
	key := ""
	if b.keyEnv != "" {
		if key = env.Getenv(b.keyEnv); key == "" {
			return nil, runcard.Prompt{}, fmt.Errorf("%w: fspo serve: --backend-key-env %s: the variable is empty or unset", errUsage, b.keyEnv)
		}
	}
	p := runcard.Prompt{Variant: string(episode.Plain), Layout: episode.Paper.Name, Shots: 4}
	if modelFlag != "" {
		file := modelFlag
		if st, err := os.Stat(modelFlag); err == nil && st.IsDir() {
			file = filepath.Join(modelFlag, modelpath.CheckpointFile)
		}
		if _, err := os.Stat(file); err != nil {
			return nil, p, fmt.Errorf("%w: fspo serve: --model %s with --backend: a run folder or checkpoint whose run card gives the prompt: %v", errUsage, modelFlag, err)
		}
		var err error
		if p, err = servePrompt(env, file, given, force); err != nil {
			return nil, p, err
		}
	} else {
		if given.Variant != "" {
			p.Variant = given.Variant
		}
		if given.Layout != "" {
			p.Layout = given.Layout
		}
		if given.Shots != 0 {
			p.Shots = given.Shots
		}
	}
	v, err := episode.ParseVariant(p.Variant)
	if err != nil || (v != episode.Plain && v != episode.PreferredOnly) {
		return nil, p, fmt.Errorf("%w: fspo serve: --backend serves the plain and preferred-only templates (got %q)", errUsage, p.Variant)
	}
	lay, err := episode.ParseLayout(p.Layout)
	if err != nil {
		return nil, p, fmt.Errorf("%w: fspo serve: %v", errUsage, err)
	}
	eng, err := serve.NewBackend(serve.BackendConfig{Label: "fspo", BaseURL: b.url, Model: b.model, APIKey: key, Timeout: b.timeout, Variant: v, Layout: lay})
	if err != nil {
		return nil, p, fmt.Errorf("%w: fspo serve: %v", errUsage, err)
	}
	return eng, p, nil
}
