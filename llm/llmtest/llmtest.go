// Package llmtest is a scripted OpenAI-compatible server on loopback for
// tests: /v1/chat/completions (with json_schema response formats and
// log-probs) and /v1/embeddings, answering from a function of the request,
// with fault injection (429 with Retry-After, 500, hangs past the client's
// timeout, truncated bodies, invalid JSON, empty choices). Schema-violating
// output is just a reply text that violates the schema.
package llmtest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure.
type Fault int

const (
	None         Fault = iota
	RateLimit          // 429 with Retry-After (Reply.RetryAfter, default 1s)
	ServerError        // 500 with an error body
	Hang               // no answer until the client gives up (or 30s pass)
	Truncated          // Content-Length promises more than is sent; the connection closes
	InvalidJSON        // 200 with a body that is not JSON
	EmptyChoices       // 200 with "choices": []
	BadRequest         // 400 with an error body (not retryable)
)

func (f Fault) String() string {
	return [...]string{"none", "rate_limit", "server_error", "hang", "truncated", "invalid_json", "empty_choices", "bad_request"}[f]
}

// Message is a chat message as received.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is the decoded body of a chat-completion request.
type ChatRequest struct {
	Model          string    `json:"model"`
	Messages       []Message `json:"messages"`
	Temperature    *float64  `json:"temperature"`
	MaxTokens      int       `json:"max_tokens"`
	Seed           *int64    `json:"seed"`
	Logprobs       bool      `json:"logprobs"`
	TopLogprobs    int       `json:"top_logprobs"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string         `json:"name"`
			Schema map[string]any `json:"schema"`
			Strict bool           `json:"strict"`
		} `json:"json_schema"`
	} `json:"response_format"`

	// Attempt counts the requests with this exact body so far, from 1: a
	// script can fail the first attempts and answer the next.
	Attempt int `json:"-"`
	// Received is when the server got the request.
	Received time.Time `json:"-"`
	// Header holds the request's HTTP headers.
	Header http.Header `json:"-"`
}

// Last is the content of the last message.
func (r ChatRequest) Last() string {
	if len(r.Messages) == 0 {
		return ""
	}
	return r.Messages[len(r.Messages)-1].Content
}

// Token is one generated token with its log-prob and alternatives.
type Token struct {
	Token   string
	Logprob float64
	Top     map[string]float64
}

// Reply is the scripted answer to one chat request.
type Reply struct {
	Text string
	// Logprobs are returned when the request asks for them; nil means one
	// token, the whole Text, with log-prob 0.
	Logprobs []Token
	// PromptTokens and CompletionTokens default to word counts.
	PromptTokens, CompletionTokens int
	Fault                          Fault
	// RetryAfter is sent with RateLimit (whole seconds in Retry-After when
	// it is a whole number of seconds, else milliseconds in Retry-After-Ms).
	RetryAfter time.Duration
	// Delay is slept before answering.
	Delay time.Duration
}

// Script answers a chat request.
type Script func(req ChatRequest) Reply

// Server is the scripted server. Its fields may be set before the first request.
type Server struct {
	*httptest.Server
	// BaseURL is URL + "/v1", what an OpenAI client takes.
	BaseURL string

	mu       sync.Mutex
	script   Script
	embed    func(texts []string) ([][]float32, Fault)
	seen     map[[32]byte]int
	requests []ChatRequest
	embeds   int
}

// New starts a server answering chat requests with script (nil: echo the
// last message). Close it when done.
func New(script Script) *Server {
	if script == nil {
		script = Echo
	}
	s := &Server{script: script, seen: map[[32]byte]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.Server = httptest.NewServer(mux)
	s.BaseURL = s.URL + "/v1"
	return s
}

// Echo answers with the last message's content.
func Echo(req ChatRequest) Reply { return Reply{Text: req.Last()} }

// SetEmbed replaces the embedding function (default: a deterministic
// 8-dimensional unit vector per text).
func (s *Server) SetEmbed(f func(texts []string) ([][]float32, Fault)) {
	s.mu.Lock()
	s.embed = f
	s.mu.Unlock()
}

// Requests returns the chat requests received so far, in arrival order.
func (s *Server) Requests() []ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChatRequest(nil), s.requests...)
}

// EmbedRequests is the number of embedding requests received.
func (s *Server) EmbedRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.embeds
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request JSON: "+err.Error())
		return
	}
	req.Received = time.Now()
	req.Header = r.Header.Clone()
	h := sha256.Sum256(body)
	s.mu.Lock()
	s.seen[h]++
	req.Attempt = s.seen[h]
	s.requests = append(s.requests, req)
	script := s.script
	s.mu.Unlock()

	rep := script(req)
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if s.fault(w, r, rep) {
		return
	}
	if rep.PromptTokens == 0 {
		for _, m := range req.Messages {
			rep.PromptTokens += len(strings.Fields(m.Content))
		}
	}
	if rep.CompletionTokens == 0 {
		rep.CompletionTokens = len(strings.Fields(rep.Text))
	}
	choice := map[string]any{
		"index":         0,
		"finish_reason": "stop",
		"message":       map[string]any{"role": "assistant", "content": rep.Text, "refusal": nil},
		"logprobs":      nil,
	}
	if req.Logprobs {
		toks := rep.Logprobs
		if toks == nil {
			toks = []Token{{Token: rep.Text, Logprob: 0, Top: map[string]float64{rep.Text: 0}}}
		}
		content := make([]map[string]any, len(toks))
		for i, t := range toks {
			top := []map[string]any{}
			for tok, lp := range t.Top {
				top = append(top, map[string]any{"token": tok, "logprob": lp, "bytes": []byte(tok)})
			}
			content[i] = map[string]any{"token": t.Token, "logprob": t.Logprob, "bytes": []byte(t.Token), "top_logprobs": top}
		}
		choice["logprobs"] = map[string]any{"content": content, "refusal": nil}
	}
	writeJSON(w, map[string]any{
		"id":      "chatcmpl-test",
		"object":  "chat.completion",
		"created": req.Received.Unix(),
		"model":   req.Model,
		"choices": []any{choice},
		"usage": map[string]any{
			"prompt_tokens":     rep.PromptTokens,
			"completion_tokens": rep.CompletionTokens,
			"total_tokens":      rep.PromptTokens + rep.CompletionTokens,
		},
	})
}

// fault writes the injected failure; false when there is none.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, rep Reply) bool {
	switch rep.Fault {
	case None:
		return false
	case RateLimit:
		ra := rep.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		if ra%time.Second == 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ra/time.Second)))
		} else {
			w.Header().Set("Retry-After-Ms", strconv.FormatInt(ra.Milliseconds(), 10))
		}
		writeError(w, http.StatusTooManyRequests, "rate limit reached")
	case ServerError:
		writeError(w, http.StatusInternalServerError, "internal error")
	case BadRequest:
		writeError(w, http.StatusBadRequest, "bad request")
	case Hang:
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	case Truncated:
		full := `{"id":"chatcmpl-test","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"cut"}}]}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(full)))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, full[:len(full)/2])
	case InvalidJSON:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "chatcmpl-test", "choices": [ this is not json`+"\n}")
	case EmptyChoices:
		writeJSON(w, map[string]any{"id": "chatcmpl-test", "object": "chat.completion", "choices": []any{},
			"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}})
	default:
		panic(fmt.Sprintf("llmtest: unknown fault %d", rep.Fault))
	}
	return true
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request JSON: "+err.Error())
		return
	}
	var texts []string
	if err := json.Unmarshal(req.Input, &texts); err != nil {
		var one string
		if err := json.Unmarshal(req.Input, &one); err != nil {
			writeError(w, http.StatusBadRequest, "input must be a string or a list of strings")
			return
		}
		texts = []string{one}
	}
	s.mu.Lock()
	s.embeds++
	embed := s.embed
	s.mu.Unlock()
	if embed == nil {
		embed = HashEmbed
	}
	vecs, f := embed(texts)
	if s.fault(w, r, Reply{Fault: f}) {
		return
	}
	data := make([]any, len(vecs))
	for i, v := range vecs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
	}
	writeJSON(w, map[string]any{"object": "list", "model": req.Model, "data": data,
		"usage": map[string]any{"prompt_tokens": len(texts), "total_tokens": len(texts)}})
}

// HashEmbed maps each text to a deterministic 8-dimensional unit vector.
func HashEmbed(texts []string) ([][]float32, Fault) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		h := sha256.Sum256([]byte(t))
		v := make([]float32, 8)
		var norm float64
		for j := range v {
			x := float64(int16(binary.LittleEndian.Uint16(h[2*j:])))
			v[j] = float32(x)
			norm += x * x
		}
		norm = math.Sqrt(norm)
		for j := range v {
			if norm > 0 {
				v[j] = float32(float64(v[j]) / norm)
			}
		}
		out[i] = v
	}
	return out, None
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "test_error", "code": nil, "param": nil}})
	w.Write(b)
}

// FailFirst answers the first n attempts of each distinct request with
// fault f, then with next.
func FailFirst(n int, f Fault, retryAfter time.Duration, next Script) Script {
	return func(req ChatRequest) Reply {
		if req.Attempt <= n {
			return Reply{Fault: f, RetryAfter: retryAfter}
		}
		return next(req)
	}
}
