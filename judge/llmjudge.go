package judge

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"fspo/llm"
)

//go:embed prompts/alpaca_pairwise_user.txt
var defaultTemplate string

// DefaultTemplate is the embedded prompt of the LLM judge
// (prompts/alpaca_pairwise_user.txt).
func DefaultTemplate() string { return defaultTemplate }

// ErrUnparsable is returned when the judge's answer is neither letter.
var ErrUnparsable = errors.New("judge answer is not m or M")

// LLMOptions configure the LLM judge. Zero values take the defaults noted.
type LLMOptions struct {
	// Template is the prompt text (format of prompts/alpaca_pairwise_user.txt);
	// empty means the embedded default.
	Template string
	// Stage names the calls for limits and accounting (default "judge").
	Stage string
	// Seed is mixed with a hash of each comparison's content into the call's seed.
	Seed int64
	// TopLogprobs is how many alternatives to ask log-probs for (default 5);
	// negative means no log-probs, the answer text decides.
	TopLogprobs int
	// MaxTokens bounds the answer (default 5).
	MaxTokens int
	// Temperature of the judge (default 0).
	Temperature float64
	// Cache, when set, wraps the client so every call goes through it.
	Cache *llm.Cache
}

// Usage counts what an LLM judge did.
type Usage struct {
	Calls        int `json:"calls"`
	Cached       int `json:"cached"`
	FromLogprobs int `json:"from_logprobs"` // verdicts read from the letters' log-probs
	FromText     int `json:"from_text"`     // verdicts read from the answer text
	Unparsable   int `json:"unparsable"`
	llm.Usage        // of the calls not answered by the cache
}

// LLM is the LLM judge: AlpacaEval's pairwise prompt with a User
// Description block (METHOD.md §4). Output a is shown as model m, b as M.
// The preference is the softmax over the two letters' log-probs when the
// endpoint returns them, else the letter in the answer text.
type LLM struct {
	client      llm.Client
	opts        LLMOptions
	system      string
	user        string
	templateErr error

	mu    sync.Mutex
	usage Usage
}

var _ Judge = (*LLM)(nil)

// NewLLM builds the LLM judge. A template that does not parse makes every
// Compare fail with the parse error (check it first with CheckTemplate).
func NewLLM(client llm.Client, opts LLMOptions) *LLM {
	if opts.Stage == "" {
		opts.Stage = "judge"
	}
	if opts.TopLogprobs == 0 {
		opts.TopLogprobs = 5
	}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = 5
	}
	if opts.Template == "" {
		opts.Template = defaultTemplate
	}
	if opts.Cache != nil {
		client = llm.Cached(client, opts.Cache)
	}
	j := &LLM{client: client, opts: opts}
	j.system, j.user, j.templateErr = parseTemplate(opts.Template)
	return j
}

// Name identifies the judge in reports.
func (j *LLM) Name() string { return "llm" }

// Usage returns the counts so far.
func (j *LLM) Usage() Usage {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.usage
}

var placeholders = []string{"{{description}}", "{{instruction}}", "{{output_m}}", "{{output_M}}"}

// CheckTemplate reports whether text is a usable judge template.
func CheckTemplate(text string) error {
	_, _, err := parseTemplate(text)
	return err
}

// parseTemplate splits the template into its [system] and [user] sections;
// "#" lines before the first section are comments.
func parseTemplate(text string) (system, user string, err error) {
	var cur *strings.Builder
	var sys, usr strings.Builder
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		switch t := strings.TrimSpace(line); {
		case t == "[system]" || t == "[user]":
			if seen[t] {
				return "", "", fmt.Errorf("judge template line %d: section %s repeated", i+1, t)
			}
			seen[t] = true
			if t == "[system]" {
				cur = &sys
			} else {
				cur = &usr
			}
		case cur == nil:
			if t != "" && !strings.HasPrefix(t, "#") {
				return "", "", fmt.Errorf("judge template line %d: text before the first [system] or [user] section", i+1)
			}
		default:
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	user = strings.TrimSpace(usr.String())
	if user == "" {
		return "", "", errors.New("judge template: no [user] section")
	}
	for _, p := range placeholders {
		if strings.Count(user, p) != 1 {
			return "", "", fmt.Errorf("judge template: the [user] section must contain %s exactly once", p)
		}
	}
	return strings.TrimSpace(sys.String()), user, nil
}

// Prompt returns the messages the judge sends for one comparison.
func (j *LLM) Prompt(description, prompt, a, b string) ([]llm.Message, error) {
	if j.templateErr != nil {
		return nil, j.templateErr
	}
	// One pass: text substituted in is not scanned again for placeholders.
	r := strings.NewReplacer("{{description}}", description, "{{instruction}}", prompt,
		"{{output_m}}", a, "{{output_M}}", b)
	var msgs []llm.Message
	if j.system != "" {
		msgs = append(msgs, llm.Message{Role: "system", Content: j.system})
	}
	return append(msgs, llm.Message{Role: "user", Content: r.Replace(j.user)}), nil
}

// seedFor derives the call's seed from the comparison's content, so that
// both orders and reruns are reproducible and keyed apart in the cache.
func (j *LLM) seedFor(description, prompt, a, b string) int64 {
	h := sha256.New()
	for _, s := range []string{description, prompt, a, b} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	sum := h.Sum(nil)
	return j.opts.Seed ^ int64(binary.LittleEndian.Uint64(sum[:8])>>1)
}

// Compare implements Judge: the probability that a (shown as m) is preferred.
func (j *LLM) Compare(ctx context.Context, description, prompt, a, b string) (float64, error) {
	msgs, err := j.Prompt(description, prompt, a, b)
	if err != nil {
		return 0, err
	}
	req := llm.Request{Stage: j.opts.Stage, Messages: msgs, Temperature: j.opts.Temperature,
		MaxTokens: j.opts.MaxTokens, Seed: j.seedFor(description, prompt, a, b)}
	if j.opts.TopLogprobs > 0 {
		req.TopLogprobs = j.opts.TopLogprobs
	}
	resp, err := j.client.Complete(ctx, req)
	if err != nil {
		return 0, err
	}
	pA, fromLogprobs, perr := Preference(resp)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.usage.Calls++
	if resp.Cached {
		j.usage.Cached++
	} else {
		j.usage.Usage.Add(resp.Usage())
	}
	switch {
	case perr != nil:
		j.usage.Unparsable++
		return 0, perr
	case fromLogprobs:
		j.usage.FromLogprobs++
	default:
		j.usage.FromText++
	}
	return pA, nil
}

// Preference reads P(m) from a judge response: the softmax over the
// log-probs of "m" and "M" at the first non-blank token when either is
// there (fromLogprobs), else the letter the text answers with.
func Preference(resp llm.Response) (pA float64, fromLogprobs bool, err error) {
	for _, t := range resp.Logprobs {
		if strings.TrimSpace(t.Token) == "" {
			continue
		}
		lm, lM := math.Inf(-1), math.Inf(-1)
		add := func(tok string, lp float64) {
			switch strings.TrimSpace(tok) {
			case "m":
				lm = logAddExp(lm, lp)
			case "M":
				lM = logAddExp(lM, lp)
			}
		}
		seen := false
		for tok, lp := range t.Top {
			add(tok, lp)
			seen = seen || strings.TrimSpace(tok) == strings.TrimSpace(t.Token)
		}
		if !seen {
			add(t.Token, t.Logprob)
		}
		if math.IsInf(lm, -1) && math.IsInf(lM, -1) {
			break // neither letter among the alternatives: read the text
		}
		return sigmoid(lm - lM), true, nil
	}
	p, err := ParseAnswer(resp.Text)
	return p, false, err
}

// ParseAnswer reads a letter answer: "m" → 1 (the first output), "M" → 0.
// Quotes, markup, a trailing period and "Model " before the letter are allowed.
func ParseAnswer(text string) (float64, error) {
	t := strings.TrimSpace(text)
	t = strings.Trim(t, "\"'`*.:;!()[] \n\t")
	t = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(t, "Model"), "model"))
	switch t {
	case "m":
		return 1, nil
	case "M":
		return 0, nil
	}
	short := text
	if len(short) > 80 {
		short = short[:80] + "..."
	}
	return 0, fmt.Errorf("%w: %q", ErrUnparsable, short)
}

func logAddExp(x, y float64) float64 {
	if math.IsInf(x, -1) {
		return y
	}
	if math.IsInf(y, -1) {
		return x
	}
	m := math.Max(x, y)
	return m + math.Log(math.Exp(x-m)+math.Exp(y-m))
}
