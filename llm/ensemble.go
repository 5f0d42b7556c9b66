package llm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"golang.org/x/time/rate"
)

// Ensemble is the real client: one or more weighted endpoints behind shared
// concurrency and rate limits, retries and accounting. It is safe for
// concurrent use.
type Ensemble struct {
	cfg     Config
	members []member
	total   float64 // sum of weights
	embed   *member // the first member with an embedding model, or nil

	sem     chan struct{}
	reqRate *rate.Limiter // nil: unlimited
	tokRate *rate.Limiter // nil: unlimited
	timeout time.Duration
	retries int

	acct *accountant
}

type member struct {
	ep     Endpoint
	name   string
	client openai.Client
	cum    float64 // cumulative weight up to and including this member
}

var (
	_ Client = (*Ensemble)(nil)
	_ Router = (*Ensemble)(nil)
)

// Router is implemented by clients that can tell, before a call, which
// member answers a request and with which effective settings; Cached puts
// both into the cache key.
type Router interface {
	Route(req Request) (resolved Request, endpoint, model string)
}

// New builds an Ensemble. API keys are read from the variables named in the
// config; a named variable that is unset is an error.
func New(cfg Config) (*Ensemble, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("llm config: %w", err)
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	e := &Ensemble{cfg: cfg, acct: newAccountant()}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = defaultConcurrency
	}
	e.sem = make(chan struct{}, conc)
	e.timeout = time.Duration(cfg.Timeout)
	if e.timeout == 0 {
		e.timeout = defaultTimeout
	}
	e.retries = cfg.Retries
	if e.retries == 0 {
		e.retries = defaultRetries
	} else if e.retries < 0 {
		e.retries = 0
	}
	if cfg.RequestsPerS > 0 {
		e.reqRate = rate.NewLimiter(rate.Limit(cfg.RequestsPerS), 1)
	}
	if cfg.TokensPerS > 0 {
		e.tokRate = rate.NewLimiter(rate.Limit(cfg.TokensPerS), max(1, int(cfg.TokensPerS)))
	}
	// One transport for all members, with enough idle connections that
	// concurrent calls reuse them.
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        2 * conc * len(cfg.Endpoints),
		MaxIdleConnsPerHost: 2 * conc,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}}
	for i, ep := range cfg.Endpoints {
		key := ""
		if ep.APIKeyEnv != "" {
			key = getenv(ep.APIKeyEnv)
			if key == "" {
				return nil, fmt.Errorf("llm config: endpoints[%d].api_key_env: environment variable %s is empty or unset", i, ep.APIKeyEnv)
			}
		}
		w := ep.Weight
		if w == 0 {
			w = 1
		}
		e.total += w
		name := ep.Name
		if name == "" {
			name = ep.Model
		}
		e.members = append(e.members, member{
			ep:   ep,
			name: name,
			cum:  e.total,
			client: openai.NewClient(
				option.WithBaseURL(ep.BaseURL),
				option.WithAPIKey(key),
				option.WithHTTPClient(hc),
				option.WithMaxRetries(0), // retries are ours (backoff below)
			),
		})
	}
	for i := range e.members {
		if e.members[i].ep.EmbeddingModel != "" {
			e.embed = &e.members[i]
			break
		}
	}
	return e, nil
}

// resolve applies the stage defaults to the request.
func (e *Ensemble) resolve(req Request) Request {
	if d, ok := e.cfg.Stages[req.Stage]; ok {
		if req.Temperature == 0 && d.Temperature != nil {
			req.Temperature = *d.Temperature
		}
		if req.MaxTokens == 0 {
			req.MaxTokens = d.MaxTokens
		}
	}
	return req
}

// pick draws the member for a resolved request from its hash (which
// includes the seed): the same request always goes to the same member.
func (e *Ensemble) pick(req Request) *member {
	if len(e.members) == 1 {
		return &e.members[0]
	}
	h := sha256.Sum256(canonical(req, "", ""))
	u := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53) * e.total
	for i := range e.members {
		if u < e.members[i].cum {
			return &e.members[i]
		}
	}
	return &e.members[len(e.members)-1]
}

// Route returns the request with stage defaults applied and the member
// that answers it.
func (e *Ensemble) Route(req Request) (Request, string, string) {
	r := e.resolve(req)
	m := e.pick(r)
	return r, m.name, m.ep.Model
}

// Key is the cache key of a request answered by endpoint/model: the hex
// sha256 of the request's canonical JSON.
func Key(req Request, endpoint, model string) string {
	h := sha256.Sum256(canonical(req, endpoint, model))
	return hex.EncodeToString(h[:])
}

// canonical is the request as JSON with a fixed field order (maps are
// written with sorted keys by encoding/json).
func canonical(req Request, endpoint, model string) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	c := struct {
		Endpoint    string         `json:"endpoint"`
		Model       string         `json:"model"`
		Stage       string         `json:"stage"`
		Messages    []msg          `json:"messages"`
		Temperature float64        `json:"temperature"`
		MaxTokens   int            `json:"max_tokens"`
		SchemaName  string         `json:"schema_name,omitempty"`
		Schema      map[string]any `json:"schema,omitempty"`
		TopLogprobs int            `json:"top_logprobs"`
		Seed        int64          `json:"seed"`
	}{Endpoint: endpoint, Model: model, Stage: req.Stage, Temperature: req.Temperature,
		MaxTokens: req.MaxTokens, TopLogprobs: req.TopLogprobs, Seed: req.Seed}
	for _, m := range req.Messages {
		c.Messages = append(c.Messages, msg{m.Role, m.Content})
	}
	if req.Schema != nil {
		c.SchemaName, c.Schema = req.Schema.Name, req.Schema.JSON
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Only a schema holding unmarshalable values (channels, funcs) gets here.
		b = fmt.Appendf(nil, "%#v", c)
	}
	return b
}

// Complete sends req to the member drawn for it, retrying retryable
// failures with jittered exponential backoff (honouring Retry-After).
func (e *Ensemble) Complete(ctx context.Context, req Request) (Response, error) {
	if len(req.Messages) == 0 {
		return Response{}, fmt.Errorf("llm %s request: no messages", req.Stage)
	}
	req = e.resolve(req)
	m := e.pick(req)
	params := m.params(req)
	tokens := estimateTokens(req)
	attempts := 0
	op := func() (Response, error) {
		attempts++
		if attempts > 1 {
			e.acct.retry()
		}
		return e.attempt(ctx, m, req, params, tokens)
	}
	resp, err := backoff.Retry(ctx, op, e.retryOptions()...)
	if err != nil {
		kind := FailureKind(err)
		if ctx.Err() != nil {
			kind = KindCanceled
		}
		e.acct.failure(req.Stage, kind)
		return Response{}, newCallError(req.Stage, m.name, kind, attempts, err)
	}
	e.acct.success(req.Stage, resp)
	return resp, nil
}

func (e *Ensemble) retryOptions() []backoff.RetryOption {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = e.cfg.InitialBackoff
	if b.InitialInterval == 0 {
		b.InitialInterval = defaultInitialBackoff
	}
	b.MaxInterval = e.cfg.MaxBackoff
	if b.MaxInterval == 0 {
		b.MaxInterval = defaultMaxBackoff
	}
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	return []backoff.RetryOption{
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(e.retries) + 1),
		backoff.WithMaxElapsedTime(0),
	}
}

// acquire takes a concurrency slot and waits for the rate limiters; the
// returned func releases the slot.
func (e *Ensemble) acquire(ctx context.Context, tokens int) (func(), error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-e.sem }
	if e.reqRate != nil {
		if err := e.reqRate.Wait(ctx); err != nil {
			release()
			return nil, err
		}
	}
	if e.tokRate != nil {
		if err := e.tokRate.WaitN(ctx, min(tokens, e.tokRate.Burst())); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// attempt is one try: slot, limits, HTTP call under the per-attempt timeout,
// and checks of the body. Errors are *attemptError, permanent when not retryable.
func (e *Ensemble) attempt(ctx context.Context, m *member, req Request, params openai.ChatCompletionNewParams, tokens int) (Response, error) {
	release, err := e.acquire(ctx, tokens)
	if err != nil {
		return Response{}, backoff.Permanent(&attemptError{kind: KindCanceled, err: err})
	}
	defer release()
	actx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	start := time.Now()
	cc, err := m.client.Chat.Completions.New(actx, params)
	lat := time.Since(start)
	if err != nil {
		return Response{}, wrapAttempt(ctx, err)
	}
	// An answer that is then rejected was still paid for: count its tokens.
	u := m.ep.usage(cc.Usage.PromptTokens, cc.Usage.CompletionTokens)
	paid := func() { e.acct.charge(req.Stage, u) }
	if len(cc.Choices) == 0 {
		paid()
		return Response{}, &attemptError{kind: KindEmpty, err: errors.New("response has no choices")}
	}
	ch := cc.Choices[0]
	if req.Schema != nil {
		if err := req.Schema.Validate(ch.Message.Content); err != nil {
			paid()
			return Response{}, &attemptError{kind: KindSchema, err: err}
		}
	}
	resp := Response{
		Text:             ch.Message.Content,
		Endpoint:         m.name,
		Model:            m.ep.Model,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		Cost:             u.Cost,
		Latency:          lat,
	}
	if req.TopLogprobs > 0 {
		for _, t := range ch.Logprobs.Content {
			tl := TokenLogprob{Token: t.Token, Logprob: t.Logprob, Top: make(map[string]float64, len(t.TopLogprobs))}
			for _, a := range t.TopLogprobs {
				if old, ok := tl.Top[a.Token]; !ok || a.Logprob > old {
					tl.Top[a.Token] = a.Logprob
				}
			}
			resp.Logprobs = append(resp.Logprobs, tl)
		}
	}
	return resp, nil
}

// wrapAttempt classifies a transport or API error; non-retryable kinds are
// marked permanent so backoff stops.
func wrapAttempt(parent context.Context, err error) error {
	kind := classify(parent, err)
	ae := &attemptError{kind: kind, err: err}
	if kind == KindRateLimit || kind == KindServer {
		ae.retryAfter = retryAfter(err, time.Now())
	}
	if !retryable(kind) {
		return backoff.Permanent(ae)
	}
	return ae
}

// params builds the openai-go request.
func (m *member) params(req Request) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: m.ep.Model}
	for _, msg := range req.Messages {
		switch msg.Role {
		case "system":
			p.Messages = append(p.Messages, openai.SystemMessage(msg.Content))
		case "assistant":
			p.Messages = append(p.Messages, openai.AssistantMessage(msg.Content))
		case "developer":
			p.Messages = append(p.Messages, openai.DeveloperMessage(msg.Content))
		default:
			p.Messages = append(p.Messages, openai.UserMessage(msg.Content))
		}
	}
	p.Temperature = openai.Float(req.Temperature)
	if req.MaxTokens > 0 {
		p.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if req.Seed != 0 {
		p.Seed = openai.Int(req.Seed)
	}
	if req.TopLogprobs > 0 {
		p.Logprobs = openai.Bool(true)
		p.TopLogprobs = openai.Int(int64(req.TopLogprobs))
	}
	if req.Schema != nil {
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   req.Schema.Name,
					Schema: req.Schema.JSON,
					Strict: openai.Bool(true),
				},
			},
		}
	}
	return p
}

// estimateTokens guesses the tokens a request uses, for the tokens/s limit:
// about 4 characters per prompt token plus the completion budget (256 when
// unset).
func estimateTokens(req Request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(m.Content)/4 + 4
	}
	if req.MaxTokens > 0 {
		n += req.MaxTokens
	} else {
		n += 256
	}
	return n
}

// Embed embeds texts with the first member that has an embedding model.
func (e *Ensemble) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if e.embed == nil {
		return nil, ErrNoEmbeddings
	}
	if len(texts) == 0 {
		return nil, nil
	}
	m := e.embed
	tokens := 0
	for _, t := range texts {
		tokens += len(t)/4 + 1
	}
	attempts := 0
	op := func() ([][]float32, error) {
		attempts++
		release, err := e.acquire(ctx, tokens)
		if err != nil {
			return nil, backoff.Permanent(&attemptError{kind: KindCanceled, err: err})
		}
		defer release()
		actx, cancel := context.WithTimeout(ctx, e.timeout)
		defer cancel()
		res, err := m.client.Embeddings.New(actx, openai.EmbeddingNewParams{
			Model: openai.EmbeddingModel(m.ep.EmbeddingModel),
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
		})
		if err != nil {
			return nil, wrapAttempt(ctx, err)
		}
		if len(res.Data) != len(texts) {
			return nil, &attemptError{kind: KindEmpty, err: fmt.Errorf("got %d embeddings for %d texts", len(res.Data), len(texts))}
		}
		out := make([][]float32, len(texts))
		for _, d := range res.Data {
			if d.Index < 0 || int(d.Index) >= len(texts) || out[d.Index] != nil {
				return nil, &attemptError{kind: KindInvalidJSON, err: fmt.Errorf("embedding index %d out of range or repeated", d.Index)}
			}
			v := make([]float32, len(d.Embedding))
			for j, x := range d.Embedding {
				v[j] = float32(x)
			}
			out[d.Index] = v
		}
		e.acct.charge("embed", m.ep.usage(res.Usage.PromptTokens, 0))
		return out, nil
	}
	out, err := backoff.Retry(ctx, op, e.retryOptions()...)
	if err != nil {
		kind := FailureKind(err)
		e.acct.failure("embed", kind)
		return nil, newCallError("embed", m.name, kind, attempts, err)
	}
	return out, nil
}

// Stats returns the accounting so far.
func (e *Ensemble) Stats() Stats { return e.acct.snapshot() }
