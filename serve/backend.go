package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"fspo/dataset"
	"fspo/episode"
)

// BackendConfig is an OpenAI-compatible inference server (vLLM, SGLang,
// llama.cpp's server, Ollama, a hosted API) that BackendEngine forwards
// generations to.
type BackendConfig struct {
	Label   string // the engine's name in /v1/models and responses
	BaseURL string // e.g. http://gpu-node:8000/v1
	Model   string // the backend's model name
	APIKey  string // "" sends none
	// Timeout bounds one generation, the whole stream included (default 2 min).
	Timeout time.Duration
	// Variant and Layout are the few-shot template personalized requests
	// are rendered with (the run card's; without one, the paper's plain
	// template).
	Variant episode.Variant
	Layout  episode.Layout
	// HTTPClient, when set, carries the requests (tests); default: a
	// client without a timeout of its own (Timeout applies per request).
	HTTPClient *http.Client
}

// BackendEngine is an Engine whose generations run on a BackendConfig
// server: fspo keeps the users, preferences and studies, renders each
// personalized request's few-shot prompt and sends the backend that prompt
// as the user's message — and nothing else of the user (no id, no name). A
// request with personalize false is sent as it came: its question alone.
// The backend applies its model's chat template.
type BackendEngine struct {
	cfg    BackendConfig
	client openai.Client
}

// NewBackend checks cfg and makes the engine.
func NewBackend(cfg BackendConfig) (*BackendEngine, error) {
	if cfg.BaseURL == "" || cfg.Model == "" {
		return nil, errors.New("backend: a base URL and a model name are required")
	}
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("backend: base URL %q: want http:// or https://", cfg.BaseURL)
	}
	if cfg.Label == "" {
		cfg.Label = cfg.Model
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Variant == "" {
		cfg.Variant, cfg.Layout = episode.Plain, episode.Paper
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	opts := []option.RequestOption{option.WithBaseURL(cfg.BaseURL), option.WithHTTPClient(hc), option.WithMaxRetries(0)}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	} else {
		opts = append(opts, option.WithAPIKey("none"))
	}
	return &BackendEngine{cfg: cfg, client: openai.NewClient(opts...)}, nil
}

// Name implements Engine.
func (b *BackendEngine) Name() string { return b.cfg.Label }

// Describe implements Engine: a backend model states no description.
func (b *BackendEngine) Describe(context.Context, []Shot) (string, error) { return "", nil }

// BackendError is a failed backend call, as the client is answered: 502
// (the backend answered an error or malformed data, or broke off its
// stream), 503 (unreachable, or overloaded: its own 429/503) or 504 (no
// answer within the timeout), with the backend's message.
type BackendError struct {
	Status int
	Msg    string
}

func (e *BackendError) Error() string { return e.Msg }

// prompt is the user message sent for req.
func (b *BackendEngine) prompt(req AnswerRequest) string {
	if !req.Personalize {
		return req.Question
	}
	recs := make([]dataset.Record, len(req.Shots))
	for i, s := range req.Shots {
		recs[i] = dataset.Record{Prompt: s.Prompt, Chosen: s.Chosen, Rejected: s.Rejected}
	}
	return episode.PromptFor(b.cfg.Variant, b.cfg.Layout, recs, req.Question, "")
}

func (b *BackendEngine) params(req AnswerRequest) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: b.cfg.Model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(b.prompt(req))},
		Temperature: openai.Float(float64(req.Temperature)), Seed: openai.Int(int64(req.Seed & (1<<63 - 1)))}
	if req.TopP > 0 && req.TopP < 1 {
		p.TopP = openai.Float(float64(req.TopP))
	}
	if req.MaxTokens > 0 {
		p.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if len(req.Stop) > 0 {
		p.Stop = openai.ChatCompletionNewParamsStopUnion{OfStringArray: req.Stop}
	}
	return p
}

// Answer implements Engine. A personalized answer that begins with the
// layout's preferred-response header (as a model trained on the template
// writes it) is given without it.
func (b *BackendEngine) Answer(ctx context.Context, req AnswerRequest) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	a := Answer{}
	if req.Personalize {
		a.Shots = len(req.Shots)
	}
	cut := &prefixCutter{}
	if req.Personalize {
		cut.prefix = strings.TrimSpace(b.cfg.Layout.Preferred)
	}
	params := b.params(req)
	if req.Stream == nil {
		var resp *openai.ChatCompletion
		err := b.retryDial(ctx, func() (err error) { resp, err = b.client.Chat.Completions.New(ctx, params); return err })
		if err != nil {
			return a, b.failure(ctx, err)
		}
		if len(resp.Choices) == 0 {
			return a, &BackendError{http.StatusBadGateway, "backend " + b.cfg.Label + ": an answer without choices"}
		}
		c := resp.Choices[0]
		a.Text = cut.Push(c.Message.Content) + cut.Flush()
		a.FinishReason = finishReason(c.FinishReason)
		a.PromptTokens, a.CompletionTokens = int(resp.Usage.PromptTokens), int(resp.Usage.CompletionTokens)
		return a, nil
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var text strings.Builder
	send := func(piece string) error {
		if piece == "" {
			return nil
		}
		text.WriteString(piece)
		return req.Stream(piece)
	}
	stream := b.client.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()
	for stream.Next() {
		ch := stream.Current()
		if ch.Usage.CompletionTokens > 0 || ch.Usage.PromptTokens > 0 {
			a.PromptTokens, a.CompletionTokens = int(ch.Usage.PromptTokens), int(ch.Usage.CompletionTokens)
		}
		for _, c := range ch.Choices {
			if err := send(cut.Push(c.Delta.Content)); err != nil {
				return a, err
			}
			if c.FinishReason != "" {
				a.FinishReason = finishReason(c.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return a, b.failure(ctx, err)
	}
	if a.FinishReason == "" {
		return a, &BackendError{http.StatusBadGateway, "backend " + b.cfg.Label + ": the stream ended without a finish reason (broken off?)"}
	}
	if err := send(cut.Flush()); err != nil {
		return a, err
	}
	a.Text = text.String()
	return a, nil
}

// Pair implements Engine: two plain samples at temperature 1 with
// different seeds (more tries while they are the same text).
func (b *BackendEngine) Pair(ctx context.Context, question string, seed uint64) (string, string, error) {
	req := AnswerRequest{Question: question, Temperature: 1, MaxTokens: 256, Seed: seed}
	first, err := b.Answer(ctx, req)
	if err != nil {
		return "", "", err
	}
	var second Answer
	for try := uint64(1); try <= 3; try++ {
		req.Seed = seed + try
		if second, err = b.Answer(ctx, req); err != nil {
			return "", "", err
		}
		if second.Text != first.Text {
			break
		}
	}
	return first.Text, second.Text, nil
}

// retryDial runs call, once more when the connection could not be made:
// then the backend never saw the request, so repeating it is safe.
func (b *BackendEngine) retryDial(ctx context.Context, call func() error) error {
	err := call()
	var op *net.OpError
	if err != nil && errors.As(err, &op) && op.Op == "dial" && ctx.Err() == nil {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
		err = call()
	}
	return err
}

// failure turns a call's error into a BackendError (or the caller's own
// cancellation, unchanged).
func (b *BackendEngine) failure(ctx context.Context, err error) error {
	name := "backend " + b.cfg.Label
	var apiErr *openai.Error
	var op *net.OpError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &BackendError{http.StatusGatewayTimeout, fmt.Sprintf("%s: no answer within %v", name, b.cfg.Timeout)}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &apiErr):
		msg := apiErr.Message
		if msg == "" {
			msg = strings.TrimSpace(apiErr.RawJSON())
		}
		status := http.StatusBadGateway
		if apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable {
			status = http.StatusServiceUnavailable
		}
		return &BackendError{status, fmt.Sprintf("%s answered %d: %s", name, apiErr.StatusCode, msg)}
	case errors.As(err, &op) && op.Op == "dial":
		return &BackendError{http.StatusServiceUnavailable, fmt.Sprintf("%s is unreachable: %v", name, op.Err)}
	}
	return &BackendError{http.StatusBadGateway, fmt.Sprintf("%s: %v", name, err)}
}

func finishReason(r string) string {
	if r == "length" {
		return "length"
	}
	return "stop"
}

// prefixCutter drops prefix (and the white space after it) from the start
// of a text that arrives in pieces, holding back only while the text so far
// could still be the prefix.
type prefixCutter struct {
	prefix string
	held   string
	done   bool
}

// Push returns what of piece can be sent now.
func (c *prefixCutter) Push(piece string) string {
	if c.done || c.prefix == "" {
		return piece
	}
	c.held += piece
	t := strings.TrimLeft(c.held, " \t\r\n")
	if len(t) < len(c.prefix) && strings.HasPrefix(c.prefix, t) {
		return "" // could still be the prefix
	}
	if strings.HasPrefix(t, c.prefix) {
		rest := strings.TrimLeft(t[len(c.prefix):], " \t\r\n")
		if rest == "" {
			return "" // the white space after it may go on
		}
		c.done, c.held = true, ""
		return rest
	}
	out := c.held
	c.done, c.held = true, ""
	return out
}

// Flush returns what is held at the end: nothing when it was the prefix.
func (c *prefixCutter) Flush() string {
	if c.done {
		return ""
	}
	c.done = true
	if strings.HasPrefix(strings.TrimLeft(c.held, " \t\r\n"), c.prefix) {
		return ""
	}
	return c.held
}
