package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"fspo/llm"
)

// llmFlags are the flags of a command that calls LLMs: one endpoint
// (--endpoint, --model, --api-key-env) or an ensemble config (--config), and
// the call cache (--cache).
type llmFlags struct {
	endpoint, model, keyEnv, config, cache *string
}

// addLLMFlags defines the LLM flags on fs; of names what the endpoint serves
// (e.g. "the judge"), cacheNote is added to the --cache help.
func addLLMFlags(fs *flag.FlagSet, of, cacheNote string) *llmFlags {
	return &llmFlags{
		endpoint: fs.String("endpoint", "", "OpenAI-compatible base URL"+of+", e.g. http://localhost:8000/v1"),
		model:    fs.String("model", "", "model name at --endpoint"),
		keyEnv:   fs.String("api-key-env", "", "environment variable holding the API key for --endpoint (none: no key sent)"),
		config:   fs.String("config", "", "llm config YAML (several endpoints, rate limits, retries) instead of --endpoint/--model"),
		cache:    fs.String("cache", "", "LLM call cache (SQLite; default OUT/llm-cache.sqlite"+cacheNote+")"),
	}
}

// check reports a contradictory or incomplete choice of endpoint as a usage
// error of cmd.
func (f *llmFlags) check(cmd string) error {
	switch {
	case *f.config != "" && (*f.endpoint != "" || *f.model != ""):
		return fmt.Errorf("%w: %s: give --config or --endpoint/--model, not both", errUsage, cmd)
	case *f.config == "" && (*f.endpoint == "" || *f.model == ""):
		return fmt.Errorf("%w: %s: give --endpoint URL and --model NAME (or --config llm.yaml)", errUsage, cmd)
	}
	return nil
}

// open builds the client, from --config or from ep completed by the
// endpoint flags, and opens the call cache (default out/llm-cache.sqlite),
// making its folder.
func (f *llmFlags) open(env *Env, cmd string, cfg llm.Config, ep llm.Endpoint, out string) (*llm.Ensemble, llm.Config, *llm.Cache, error) {
	if *f.config != "" {
		var err error
		if cfg, err = llm.LoadConfig(*f.config); err != nil {
			return nil, cfg, nil, err
		}
	} else {
		ep.BaseURL, ep.Model, ep.APIKeyEnv = *f.endpoint, *f.model, *f.keyEnv
		cfg.Endpoints = []llm.Endpoint{ep}
	}
	cfg.Getenv = env.Getenv
	ens, err := llm.New(cfg)
	if err != nil {
		return nil, cfg, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	path := *f.cache
	if path == "" {
		path = filepath.Join(out, "llm-cache.sqlite")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, cfg, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	cache, err := llm.NewCache(path)
	if err != nil {
		return nil, cfg, nil, err
	}
	return ens, cfg, cache, nil
}
