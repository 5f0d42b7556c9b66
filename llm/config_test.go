package llm

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

func TestParseConfig(t *testing.T) {
	yamlText := `
endpoints:
  - name: small
    base_url: http://localhost:8000/v1
    model: llama-3.2-3b
    weight: 2
    price_in: 0.1
    price_out: 0.2
  - base_url: https://api.example.com/v1
    model: gpt-4o
    api_key_env: OPENAI_API_KEY
concurrency: 16
requests_per_s: 5
tokens_per_s: 20000
timeout: 45s
retries: 6
stages:
  view: {temperature: 1.0, max_tokens: 512}
`
	cfg, err := ParseConfig([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[0].Weight != 2 || cfg.Endpoints[1].APIKeyEnv != "OPENAI_API_KEY" ||
		cfg.Concurrency != 16 || cfg.RequestsPerS != 5 || cfg.TokensPerS != 20000 ||
		time.Duration(cfg.Timeout) != 45*time.Second || cfg.Retries != 6 ||
		cfg.Stages["view"].MaxTokens != 512 || *cfg.Stages["view"].Temperature != 1.0 {
		t.Errorf("parsed %+v", cfg)
	}
	jsonText := `{"endpoints": [{"base_url": "http://x/v1", "model": "m"}], "timeout": "2s"}`
	if cfg, err := ParseConfig([]byte(jsonText)); err != nil || time.Duration(cfg.Timeout) != 2*time.Second {
		t.Errorf("JSON config: %+v, %v", cfg, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown key", "endpoints: [{base_url: u, model: m}]\nconcurrncy: 3", "concurrncy"},
		{"unknown endpoint key", "endpoints: [{base_url: u, model: m, temp: 1}]", "temp"},
		{"no endpoints", "concurrency: 2", "endpoints"},
		{"no model", "endpoints: [{base_url: u}]", "endpoints[0].model"},
		{"no url", "endpoints: [{model: m}]", "endpoints[0].base_url"},
		{"negative weight", "endpoints: [{base_url: u, model: m, weight: -1}]", "endpoints[0].weight"},
		{"duplicate name", "endpoints: [{base_url: u, model: m}, {base_url: v, model: m}]", "endpoints[1].name"},
		{"bad duration", "endpoints: [{base_url: u, model: m}]\ntimeout: soon", "line 2"},
		{"bad temperature", "endpoints: [{base_url: u, model: m}]\nstages: {view: {temperature: 3}}", "stages.view.temperature"},
		{"negative rate", "endpoints: [{base_url: u, model: m}]\nrequests_per_s: -1", "requests_per_s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSchemaValidate(t *testing.T) {
	s := &Schema{Name: "s", JSON: map[string]any{
		"type":     "object",
		"required": []any{"views"},
		"properties": map[string]any{
			"views": map[string]any{"type": "array", "items": map[string]any{
				"type": "object", "required": []any{"text"},
				"properties": map[string]any{"text": map[string]any{"type": "string"}, "n": map[string]any{"type": "integer"}},
			}},
			"kind": map[string]any{"type": "string", "enum": []any{"a", "b"}},
		},
	}}
	tests := []struct {
		text string
		ok   bool
	}{
		{`{"views": [{"text": "x", "n": 2}]}`, true},
		{`{"views": [], "kind": "a"}`, true},
		{`{"views": [{"text": "x", "n": 2.5}]}`, false},
		{`{"views": [{"n": 2}]}`, false},
		{`{"kind": "a"}`, false},
		{`{"views": [], "kind": "c"}`, false},
		{`{"views": {}}`, false},
		{`[1, 2]`, false},
		{`{"views": []`, false},
		{`{"views": []} extra`, false},
		{`not json`, false},
	}
	for _, tt := range tests {
		err := s.Validate(tt.text)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%s) = %v, want ok=%v", tt.text, err, tt.ok)
		}
	}
}

func TestPercentileIndex(t *testing.T) {
	tests := []struct {
		n    int
		q    float64
		want int
	}{{1, 0.5, 0}, {2, 0.5, 0}, {100, 0.5, 49}, {100, 0.99, 98}, {101, 0.99, 99}, {10, 0.99, 9}}
	for _, tt := range tests {
		if got := percentileIndex(tt.n, tt.q); got != tt.want {
			t.Errorf("percentileIndex(%d, %v) = %d, want %d", tt.n, tt.q, got, tt.want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(4 * time.Second).Format(http.TimeFormat)}, 4 * time.Second},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		err := &openai.Error{StatusCode: 429, Response: &http.Response{Header: h}}
		if got := retryAfter(err, now); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
