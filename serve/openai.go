package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrInvalid marks engine errors caused by the request (say, a question
// longer than the model's context); the server answers 400 with the message.
var ErrInvalid = errors.New("invalid request")

// The OpenAI-compatible endpoints follow the Chat Completions and
// Completions API references (platform.openai.com/docs/api-reference/chat,
// …/completions), including streaming as server-sent events ending in
// "data: [DONE]". Extensions: "personalize" (default true), "shots" (how many
// preferences), "shot_strategy"; responses carry "fspo": {user_description, shots, …}.

// genFields are the request fields shared by both endpoints.
type genFields struct {
	Model               string   `json:"model"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	TopP                *float64 `json:"top_p"`
	Seed                *int64   `json:"seed"`
	N                   *int     `json:"n"`
	Stream              bool     `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Stop         json.RawMessage `json:"stop"`
	Personalize  *bool           `json:"personalize"`
	Shots        *int            `json:"shots"`
	ShotStrategy string          `json:"shot_strategy"`
	FSPO         *struct {
		// BestOf samples this many answers and returns the one the user's
		// implicit reward ranks first (engines that rank only).
		BestOf int `json:"best_of"`
	} `json:"fspo"`
}

type chatRequest struct {
	genFields
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

type completionRequest struct {
	genFields
	Prompt json.RawMessage `json:"prompt"`
}

// fspoInfo is the extension field of every response.
type fspoInfo struct {
	UserDescription string `json:"user_description"`
	// Shots counts the examples in the prompt; ShotsLeftOut those selected
	// but left out because they did not fit the model's context.
	Shots        int    `json:"shots"`
	ShotsLeftOut int    `json:"shots_left_out"`
	Personalized bool   `json:"personalized"`
	Strategy     string `json:"shot_strategy"`
	Seed         uint64 `json:"seed"`
	// BestOf and Rewards: with "best_of", how many answers were sampled
	// and each one's implicit reward, in seed order.
	BestOf  int       `json:"best_of,omitempty"`
	Rewards []float64 `json:"rewards,omitempty"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// job is a validated generation request.
type job struct {
	bestOf       int // > 1: the best of that many answers by implicit reward
	chat         bool
	engine       Engine
	req          AnswerRequest
	strategy     string
	nShots       int
	stream       bool
	includeUsage bool
}

// messageText reads a chat message's content: a string or an array of
// {"type":"text","text":…} parts.
func messageText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part of type %q is not supported (only text)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// prepare validates the shared fields; it returns the message of a 400.
func (s *Server) prepare(g genFields, question string) (j job, msg string) {
	j = job{stream: g.Stream, strategy: s.cfg.Strategy, nShots: s.cfg.Shots}
	j.includeUsage = g.StreamOptions != nil && g.StreamOptions.IncludeUsage
	if msg := s.checkText("question", question, true); msg != "" {
		return j, msg
	}
	switch e, ok := s.engines[g.Model]; {
	case g.Model == "":
		j.engine = s.cfg.Engine
	case ok:
		j.engine = e
	default:
		return j, fmt.Sprintf("unknown model %q; GET /v1/models lists them", g.Model)
	}
	if g.N != nil && *g.N != 1 {
		return j, `only "n": 1 is supported`
	}
	j.req = AnswerRequest{Question: question, Personalize: true, MaxTokens: s.cfg.MaxTokens, Temperature: 1, TopP: 1}
	if g.MaxCompletionTokens != nil {
		g.MaxTokens = g.MaxCompletionTokens
	}
	if g.MaxTokens != nil {
		if *g.MaxTokens < 1 || *g.MaxTokens > s.cfg.MaxTokens {
			return j, fmt.Sprintf("max_tokens %d is outside 1..%d", *g.MaxTokens, s.cfg.MaxTokens)
		}
		j.req.MaxTokens = *g.MaxTokens
	}
	if g.Temperature != nil {
		if *g.Temperature < 0 || *g.Temperature > 2 {
			return j, fmt.Sprintf("temperature %g is outside 0..2", *g.Temperature)
		}
		j.req.Temperature = float32(*g.Temperature)
	}
	if g.TopP != nil {
		if *g.TopP <= 0 || *g.TopP > 1 {
			return j, fmt.Sprintf("top_p %g is outside (0, 1]", *g.TopP)
		}
		j.req.TopP = float32(*g.TopP)
	}
	if g.Seed != nil {
		j.req.Seed = uint64(*g.Seed)
	} else {
		j.req.Seed = rand.Uint64()
	}
	if g.Personalize != nil {
		j.req.Personalize = *g.Personalize
	}
	if j.req.Stop, msg = s.parseStop(g.Stop); msg != "" {
		return j, msg
	}
	if g.Shots != nil {
		if *g.Shots < 0 || *g.Shots > 64 {
			return j, fmt.Sprintf("shots %d is outside 0..64", *g.Shots)
		}
		j.nShots = *g.Shots
	}
	if g.ShotStrategy != "" {
		if _, ok := strategies[g.ShotStrategy]; !ok {
			names := slices.Sorted(maps.Keys(strategies))
			return j, fmt.Sprintf("unknown shot_strategy %q (want one of %s)", g.ShotStrategy, strings.Join(names, ", "))
		}
		j.strategy = g.ShotStrategy
	}
	return j, s.prepareBestOf(g, &j)
}

// prepareBestOf reads "fspo": {"best_of": n}; it returns a 400's message.
func (s *Server) prepareBestOf(g genFields, j *job) string {
	if g.FSPO == nil || g.FSPO.BestOf == 0 || g.FSPO.BestOf == 1 {
		return ""
	}
	switch n := g.FSPO.BestOf; {
	case n < 1 || n > maxCandidates:
		return fmt.Sprintf("fspo.best_of %d is outside 1..%d", n, maxCandidates)
	case j.stream:
		return "fspo.best_of cannot stream: the best answer is known only when all are written"
	case !j.req.Personalize:
		return "fspo.best_of ranks by the user's preferences: it needs a personalized request"
	case !canRank(j.engine):
		return "fspo.best_of: " + ErrNoRanking.Error()
	}
	j.bestOf = g.FSPO.BestOf
	return ""
}

// maxStops and maxStopChars bound "stop": as OpenAI's API, up to 4 sequences.
const maxStops, maxStopChars = 4, 200

// parseStop reads "stop": null, a string, or an array of up to 4 non-empty strings.
func (s *Server) parseStop(raw json.RawMessage) ([]string, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ""
	}
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, `"stop" must be a string or an array of up to 4 strings`
	}
	if len(list) > maxStops {
		return nil, fmt.Sprintf(`"stop" has %d sequences; the limit is %d`, len(list), maxStops)
	}
	for i, st := range list {
		field := fmt.Sprintf("stop[%d]", i)
		if msg := s.checkText(field, st, true); msg != "" {
			return nil, msg
		}
		if n := utf8.RuneCountInString(st); n > maxStopChars {
			return nil, fmt.Sprintf("field %q has %d characters; the limit is %d", field, n, maxStopChars)
		}
	}
	return list, ""
}

// chatCompletions: POST /v1/chat/completions. The question is the last user
// message; earlier turns are not part of the FSPO prompt format.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	question, found := "", false
	for i := len(req.Messages) - 1; i >= 0 && !found; i-- {
		if req.Messages[i].Role == "user" {
			text, err := messageText(req.Messages[i].Content)
			if err != nil {
				badRequest(w, "messages[%d]: %v", i, err)
				return
			}
			question, found = text, true
		}
	}
	if !found {
		badRequest(w, `"messages" has no message with role "user"`)
		return
	}
	j, msg := s.prepare(req.genFields, question)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	j.chat = true
	s.run(w, r, j)
}

// completions: POST /v1/completions with "prompt" a string (or an array of one).
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	var prompt string
	if err := json.Unmarshal(req.Prompt, &prompt); err != nil {
		var list []string
		if err := json.Unmarshal(req.Prompt, &list); err != nil || len(list) != 1 {
			badRequest(w, `"prompt" must be a string or an array of exactly one string`)
			return
		}
		prompt = list[0]
	}
	j, msg := s.prepare(req.genFields, prompt)
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	s.run(w, r, j)
}

// run selects the shots, calls the engine and writes the response, streamed or whole.
func (s *Server) run(w http.ResponseWriter, r *http.Request, j job) {
	ctx := r.Context()
	u := userFrom(ctx)
	if j.req.Personalize {
		shots, desc, err := s.personalization(ctx, u.ID, j.strategy, j.nShots, j.req.Seed)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		j.req.Shots, j.req.Description = shots, desc
	}
	id := newID("cmpl-")
	if j.chat {
		id = newID("chatcmpl-")
	}
	created := s.cfg.Now().Unix()
	object := "text_completion"
	if j.chat {
		object = "chat.completion"
	}
	info := fspoInfo{Shots: len(j.req.Shots), Personalized: j.req.Personalize, Strategy: j.strategy, Seed: j.req.Seed}

	var sse *sseWriter
	if j.stream {
		sse = &sseWriter{w: w, rc: http.NewResponseController(w)}
		object += ".chunk"
		if j.chat {
			object = "chat.completion.chunk"
		}
		first := true
		j.req.Stream = func(piece string) error {
			c := chunk(id, object, created, j.engine.Name(), j.chat, piece, nil, nil)
			if first && j.chat {
				c["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)["role"] = "assistant"
			}
			first = false
			return sse.send(c)
		}
	}
	var ans Answer
	var err error
	if j.bestOf > 1 {
		ans, info.Rewards, err = s.bestOf(ctx, j, j.bestOf)
		info.BestOf = j.bestOf
	} else {
		ans, err = j.engine.Answer(ctx, j.req)
	}
	if err != nil {
		s.generationFailed(w, r, u.ID, sse, err)
		return
	}
	info.UserDescription = ans.Description
	if j.req.Personalize {
		info.Shots, info.ShotsLeftOut = ans.Shots, len(j.req.Shots)-ans.Shots
	}
	use := usage{ans.PromptTokens, ans.CompletionTokens, ans.PromptTokens + ans.CompletionTokens}
	finish := ans.FinishReason
	if finish == "" {
		finish = "stop"
	}
	if sse != nil {
		sse.send(chunk(id, object, created, j.engine.Name(), j.chat, "", &finish, &info))
		if j.includeUsage {
			sse.send(map[string]any{"id": id, "object": object, "created": created, "model": j.engine.Name(),
				"choices": []any{}, "usage": use})
		}
		sse.done()
		return
	}
	choice := map[string]any{"index": 0, "finish_reason": finish, "logprobs": nil}
	if j.chat {
		choice["message"] = map[string]any{"role": "assistant", "content": ans.Text}
	} else {
		choice["text"] = ans.Text
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": object, "created": created,
		"model": j.engine.Name(), "choices": []any{choice}, "usage": use, "fspo": info})
}

// generationFailed answers a failed generation: nothing to a client that
// went away, an error event on a stream already started, 400 for invalid
// requests, a backend's own status (502/503/504, BackendError) and 500
// otherwise.
func (s *Server) generationFailed(w http.ResponseWriter, r *http.Request, user string, sse *sseWriter, err error) {
	ctx := r.Context()
	var backendErr *BackendError
	switch {
	case ctx.Err() != nil:
		s.cfg.Logger.Info("client went away during generation", "path", r.URL.Path, "user", user)
	case sse != nil && sse.started:
		sse.send(map[string]any{"error": map[string]string{"message": "generation failed: " + publicError(err), "type": "server_error"}})
	case errors.Is(err, ErrInvalid):
		badRequest(w, "%v", err)
	case errors.As(err, &backendErr):
		writeError(w, backendErr.Status, "backend_error", backendErr.Msg)
	default:
		s.internal(w, r, err)
	}
	if ctx.Err() == nil && !errors.Is(err, ErrInvalid) {
		s.cfg.Logger.Error("generation failed", "user", user, "err", err)
	}
}

// publicError keeps engine messages out of responses except for ErrInvalid
// ones and a backend's (BackendError).
func publicError(err error) string {
	var be *BackendError
	if errors.Is(err, ErrInvalid) || errors.As(err, &be) {
		return err.Error()
	}
	return "internal error; see the server log"
}

// chunk builds one streamed piece; the final one has finish set and no text.
func chunk(id, object string, created int64, model string, chat bool, text string, finish *string, info *fspoInfo) map[string]any {
	choice := map[string]any{"index": 0, "finish_reason": finish, "logprobs": nil}
	if chat {
		delta := map[string]any{}
		if finish == nil {
			delta["content"] = text
		}
		choice["delta"] = delta
	} else {
		choice["text"] = text
	}
	c := map[string]any{"id": id, "object": object, "created": created, "model": model, "choices": []any{choice}}
	if info != nil {
		c["fspo"] = info
	}
	return c
}

// sseWriter writes server-sent events ("data: JSON\n\n"), flushing each.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (e *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.raw(b)
}

func (e *sseWriter) raw(b []byte) error {
	if !e.started {
		h := e.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		e.w.WriteHeader(http.StatusOK)
		e.started = true
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sseWriter) done() { e.raw([]byte("[DONE]")) }
