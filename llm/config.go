package llm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"fspo/fileio"

	"go.yaml.in/yaml/v3"
)

// Endpoint is one ensemble member: an OpenAI-compatible server and model.
type Endpoint struct {
	// Name labels the member in responses, accounting and the cache key;
	// defaults to Model.
	Name    string `yaml:"name" json:"name"`
	BaseURL string `yaml:"base_url" json:"base_url"`
	Model   string `yaml:"model" json:"model"`
	// APIKeyEnv names the environment variable holding the API key; empty
	// means no key is sent (local servers).
	APIKeyEnv string `yaml:"api_key_env" json:"api_key_env"`
	// Weight is the relative probability of drawing this member; 0 means 1.
	Weight float64 `yaml:"weight" json:"weight"`
	// PriceIn and PriceOut are the prices per million prompt and completion tokens.
	PriceIn  float64 `yaml:"price_in" json:"price_in"`
	PriceOut float64 `yaml:"price_out" json:"price_out"`
	// EmbeddingModel, when set, serves Embed (the first member with one does).
	EmbeddingModel string `yaml:"embedding_model" json:"embedding_model"`
}

// usage is what in prompt and out completion tokens cost at e's prices.
func (e Endpoint) usage(in, out int64) Usage {
	return Usage{PromptTokens: int(in), CompletionTokens: int(out), Cost: (float64(in)*e.PriceIn + float64(out)*e.PriceOut) / 1e6}
}

// StageDefaults are the sampling defaults of one stage; a Request's non-zero
// Temperature or MaxTokens overrides them.
type StageDefaults struct {
	Temperature *float64 `yaml:"temperature" json:"temperature"`
	MaxTokens   int      `yaml:"max_tokens" json:"max_tokens"`
}

// Duration is a time.Duration written as "30s", "1m30s" in config files.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q (want e.g. \"30s\"): %w", n.Line, s, err)
	}
	*d = Duration(v)
	return nil
}

// Config configures an Ensemble. Zero values take the defaults noted.
type Config struct {
	Endpoints []Endpoint `yaml:"endpoints" json:"endpoints"`
	// Concurrency bounds the calls in flight (default 8).
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// RequestsPerS and TokensPerS bound the request rate and the rate of
	// estimated tokens (prompt characters/4 + max tokens, or 256 when unset);
	// 0 means unlimited. The token bucket holds one second's budget; a
	// request estimated above it waits for a full bucket.
	RequestsPerS float64 `yaml:"requests_per_s" json:"requests_per_s"`
	TokensPerS   float64 `yaml:"tokens_per_s" json:"tokens_per_s"`
	// Timeout bounds one attempt (default 60s).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Retries is the number of retries after the first attempt (default 4;
	// set -1 for none).
	Retries int `yaml:"retries" json:"retries"`
	// Stages holds per-stage sampling defaults.
	Stages map[string]StageDefaults `yaml:"stages" json:"stages"`

	// Getenv reads the API-key variables; nil means os.Getenv.
	Getenv func(string) string `yaml:"-" json:"-"`
	// MaxBackoff caps one backoff wait (default 30s); tests shorten it.
	MaxBackoff time.Duration `yaml:"-" json:"-"`
	// InitialBackoff is the first backoff wait (default 500ms).
	InitialBackoff time.Duration `yaml:"-" json:"-"`
}

const (
	defaultConcurrency    = 8
	defaultTimeout        = 60 * time.Second
	defaultRetries        = 4
	defaultMaxBackoff     = 30 * time.Second
	defaultInitialBackoff = 500 * time.Millisecond
)

// LoadConfig reads a YAML (or JSON, a subset of YAML) config file; unknown
// keys are errors.
func LoadConfig(path string) (Config, error) {
	cfg, err := fileio.Parse(path, ParseConfig)
	if err != nil {
		return Config{}, fmt.Errorf("load llm config: %w", err)
	}
	return cfg, nil
}

// ParseConfig decodes YAML or JSON config text, rejecting unknown keys, and validates it.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the config and names the offending field.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("endpoints: at least one endpoint is required")
	}
	seen := map[string]bool{}
	for i, e := range c.Endpoints {
		name := e.Name
		if name == "" {
			name = e.Model
		}
		switch {
		case strings.TrimSpace(e.BaseURL) == "":
			return fmt.Errorf("endpoints[%d].base_url: required", i)
		case strings.TrimSpace(e.Model) == "":
			return fmt.Errorf("endpoints[%d].model: required", i)
		case e.Weight < 0 || math.IsNaN(e.Weight) || math.IsInf(e.Weight, 0):
			return fmt.Errorf("endpoints[%d].weight: %v must be a finite number >= 0", i, e.Weight)
		case e.PriceIn < 0 || e.PriceOut < 0:
			return fmt.Errorf("endpoints[%d]: prices must be >= 0", i)
		case seen[name]:
			return fmt.Errorf("endpoints[%d].name: %q is used twice", i, name)
		}
		seen[name] = true
	}
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("concurrency: %d must be >= 0", c.Concurrency)
	case c.RequestsPerS < 0 || math.IsNaN(c.RequestsPerS):
		return fmt.Errorf("requests_per_s: %v must be >= 0", c.RequestsPerS)
	case c.TokensPerS < 0 || math.IsNaN(c.TokensPerS):
		return fmt.Errorf("tokens_per_s: %v must be >= 0", c.TokensPerS)
	case c.Timeout < 0:
		return fmt.Errorf("timeout: %v must be >= 0", time.Duration(c.Timeout))
	case c.Retries < -1:
		return fmt.Errorf("retries: %d must be >= -1", c.Retries)
	}
	for name, s := range c.Stages {
		if s.MaxTokens < 0 {
			return fmt.Errorf("stages.%s.max_tokens: %d must be >= 0", name, s.MaxTokens)
		}
		if s.Temperature != nil && (*s.Temperature < 0 || *s.Temperature > 2) {
			return fmt.Errorf("stages.%s.temperature: %v must be in [0, 2]", name, *s.Temperature)
		}
	}
	return nil
}
