// Package llm is the client for OpenAI-compatible chat-completion endpoints:
// an ensemble of weighted endpoints with per-stage defaults, concurrency,
// request and token rate limits, retries with jittered exponential backoff,
// JSON-schema structured outputs, token log-probabilities, a SQLite call
// cache and accounting of calls, tokens, latency and cost.
package llm

import (
	"context"
	"errors"
	"time"
)

// Message is one chat message.
type Message struct{ Role, Content string }

// Schema asks for structured output: the endpoint is sent JSON as a
// json_schema response format, and the returned JSON is checked against the
// schema's required keys and property types.
type Schema struct {
	Name string
	JSON map[string]any
}

// Request is one chat-completion call. The whole request (and the chosen
// endpoint) keys the cache.
type Request struct {
	// Stage names the pipeline step ("persona", "question", "view",
	// "response", "label", "judge", ...); it selects per-stage defaults and
	// groups the accounting.
	Stage    string
	Messages []Message
	// Temperature and MaxTokens override the stage defaults when non-zero.
	Temperature float64
	MaxTokens   int
	// Schema, when set, requests JSON output validated against it.
	Schema *Schema
	// TopLogprobs > 0 asks for token log-probabilities with that many
	// alternatives per position.
	TopLogprobs int
	// Seed is part of the cache key and draws the ensemble member
	// deterministically; it is also sent to the endpoint.
	Seed int64
}

// TokenLogprob is the log-probability of one generated token and of the
// most likely alternatives at its position (natural log).
type TokenLogprob struct {
	Token   string
	Logprob float64
	Top     map[string]float64
}

// Response is the result of one call.
type Response struct {
	Text     string
	Logprobs []TokenLogprob
	// Endpoint and Model name the ensemble member that answered.
	Endpoint, Model                string
	PromptTokens, CompletionTokens int
	Latency                        time.Duration
	// Cost is in the currency of the configured prices (per million tokens).
	Cost float64
	// Cached is true when the response came from the call cache.
	Cached bool
}

// Usage is what the call was charged.
func (r Response) Usage() Usage {
	return Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, Cost: r.Cost}
}

// Client completes chat requests and embeds texts.
type Client interface {
	Complete(ctx context.Context, req Request) (Response, error)
	// Embed returns one vector per text; ErrNoEmbeddings when the endpoint
	// has no embedding model.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// ErrNoEmbeddings is returned by Embed when no endpoint offers embeddings.
var ErrNoEmbeddings = errors.New("llm: endpoint has no embeddings")
