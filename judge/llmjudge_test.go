package judge

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fspo/llm"
	"fspo/llm/llmtest"
)

func newClient(t *testing.T, script llmtest.Script) (*llm.Ensemble, *llmtest.Server) {
	t.Helper()
	srv := llmtest.New(script)
	t.Cleanup(srv.Close)
	e, err := llm.New(llm.Config{
		Endpoints:      []llm.Endpoint{{BaseURL: srv.BaseURL, Model: "judge-model", PriceIn: 1, PriceOut: 1}},
		Timeout:        llm.Duration(5 * time.Second),
		Retries:        2,
		InitialBackoff: time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, srv
}

// outputs pulls the two outputs out of a judge prompt built from the default template.
func outputs(t *testing.T, prompt string) (m, M string) {
	_, rest, ok := strings.Cut(prompt, "### Model m\n\n")
	if !ok {
		t.Fatalf("prompt lacks the m block:\n%s", prompt)
	}
	m, rest, ok = strings.Cut(rest, "\n\n### Model M\n\n")
	if !ok {
		t.Fatalf("prompt lacks the M block")
	}
	M, _, _ = strings.Cut(rest, "\n\n## Your Task")
	return m, M
}

// catLover answers with the letter of the output that mentions cats.
func catLover(t *testing.T, withLogprobs bool) llmtest.Script {
	return func(r llmtest.ChatRequest) llmtest.Reply {
		m, _ := outputs(t, r.Last())
		letter, pm := "M", 0.1
		if strings.Contains(m, "cat") {
			letter, pm = "m", 0.9
		}
		rep := llmtest.Reply{Text: letter}
		if withLogprobs {
			rep.Logprobs = []llmtest.Token{{Token: letter, Logprob: math.Log(max(pm, 1-pm)),
				Top: map[string]float64{"m": math.Log(pm), "M": math.Log(1 - pm), " the": -9}}}
		}
		return rep
	}
}

func TestLLMJudgeBothOrders(t *testing.T) {
	for _, lp := range []bool{false, true} {
		name := map[bool]string{false: "text", true: "logprobs"}[lp]
		t.Run(name, func(t *testing.T) {
			e, srv := newClient(t, catLover(t, lp))
			opts := LLMOptions{}
			if !lp {
				opts.TopLogprobs = -1
			}
			j := NewLLM(e, opts)
			ctx := context.Background()
			win, err := BothOrders(ctx, j, "Loves cats.", "Tell me a story.", "A cat slept.", "A dog ran.")
			if err != nil {
				t.Fatal(err)
			}
			loss, err := BothOrders(ctx, j, "Loves cats.", "Tell me a story.", "A dog ran.", "A cat slept.")
			if err != nil {
				t.Fatal(err)
			}
			wantF := map[bool]float64{false: 1, true: 0.9}[lp]
			if win.Score != 1 || win.Dropped || math.Abs(win.Forward-wantF) > 1e-9 || math.Abs(win.Backward-(1-wantF)) > 1e-9 {
				t.Errorf("win outcome %+v, want score 1, forward %v", win, wantF)
			}
			if loss.Score != 0 || loss.Dropped {
				t.Errorf("loss outcome %+v", loss)
			}
			u := j.Usage()
			if u.Calls != 4 || (lp && u.FromLogprobs != 4) || (!lp && u.FromText != 4) {
				t.Errorf("usage %+v", u)
			}
			reqs := srv.Requests()
			if len(reqs) != 4 {
				t.Fatalf("server saw %d requests, want 4", len(reqs))
			}
			r0 := reqs[0]
			if r0.Logprobs != lp || (lp && r0.TopLogprobs != 5) || r0.MaxTokens != 5 || r0.Seed == nil {
				t.Errorf("request: logprobs %v top %d max %d seed %v", r0.Logprobs, r0.TopLogprobs, r0.MaxTokens, r0.Seed)
			}
			if *reqs[0].Seed == *reqs[1].Seed {
				t.Error("both orders sent the same seed; want seeds derived from the content")
			}
			if len(r0.Messages) != 2 || r0.Messages[0].Role != "system" || !strings.Contains(r0.Last(), "## User Description\n\nLoves cats.") ||
				!strings.Contains(r0.Last(), "Tell me a story.") || !strings.Contains(r0.Last(), "longer or shorter") {
				t.Errorf("prompt:\n%s", r0.Last())
			}
		})
	}
}

func TestLLMJudgePositionBiasDropped(t *testing.T) {
	e, _ := newClient(t, func(r llmtest.ChatRequest) llmtest.Reply { return llmtest.Reply{Text: "m"} })
	o, err := BothOrders(context.Background(), NewLLM(e, LLMOptions{TopLogprobs: -1}), "d", "p", "x", "y")
	if err != nil || !o.Dropped {
		t.Errorf("outcome %+v, %v; want dropped", o, err)
	}
}

func TestLLMJudgeCached(t *testing.T) {
	e, srv := newClient(t, catLover(t, true))
	cache, err := llm.NewCache(filepath.Join(t.TempDir(), "judge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	ctx := context.Background()
	for run := range 2 {
		j := NewLLM(e, LLMOptions{Cache: cache})
		o, err := BothOrders(ctx, j, "Loves cats.", "Story?", "A cat.", "A dog.")
		if err != nil || o.Score != 1 {
			t.Fatalf("run %d: %+v, %v", run, o, err)
		}
		if u := j.Usage(); u.Cached != 2*run {
			t.Errorf("run %d: cached %d, want %d", run, u.Cached, 2*run)
		}
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("server saw %d requests over two runs, want 2", n)
	}
}

func TestLLMJudgeUnparsable(t *testing.T) {
	e, _ := newClient(t, func(r llmtest.ChatRequest) llmtest.Reply { return llmtest.Reply{Text: "Both are fine."} })
	j := NewLLM(e, LLMOptions{TopLogprobs: -1})
	_, err := j.Compare(context.Background(), "d", "p", "x", "y")
	if !errors.Is(err, ErrUnparsable) || j.Usage().Unparsable != 1 {
		t.Errorf("err = %v, usage %+v; want ErrUnparsable", err, j.Usage())
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		text string
		want float64
		ok   bool
	}{
		{"m", 1, true}, {"M", 0, true}, {" m\n", 1, true}, {"M.", 0, true}, {`"m"`, 1, true},
		{"**M**", 0, true}, {"Model m", 1, true}, {"model M", 0, true},
		{"mm", 0, false}, {"", 0, false}, {"m or M", 0, false}, {"Maybe", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAnswer(tt.text)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseAnswer(%q) = %v, %v; want %v ok=%v", tt.text, got, err, tt.want, tt.ok)
		}
	}
}

func TestPreference(t *testing.T) {
	lp := math.Log
	tests := []struct {
		name     string
		resp     llm.Response
		want     float64
		fromLogp bool
		ok       bool
	}{
		{"softmax of the two letters", llm.Response{Text: "m", Logprobs: []llm.TokenLogprob{
			{Token: "m", Logprob: lp(0.6), Top: map[string]float64{"m": lp(0.6), "M": lp(0.2), "x": lp(0.2)}}}}, 0.75, true, true},
		{"leading blank token skipped, spaced variants summed", llm.Response{Text: " M", Logprobs: []llm.TokenLogprob{
			{Token: " ", Logprob: 0, Top: map[string]float64{" ": 0}},
			{Token: "M", Logprob: lp(0.5), Top: map[string]float64{"M": lp(0.5), " M": lp(0.1), "m": lp(0.2)}}}}, 0.25, true, true},
		{"only one letter in the top list", llm.Response{Text: "M", Logprobs: []llm.TokenLogprob{
			{Token: "M", Logprob: lp(0.99), Top: map[string]float64{"M": lp(0.99)}}}}, 0, true, true},
		{"no letter among log-probs: text", llm.Response{Text: "m", Logprobs: []llm.TokenLogprob{
			{Token: "Model", Logprob: 0, Top: map[string]float64{"Model": 0}}}}, 1, false, true},
		{"no log-probs: text", llm.Response{Text: "M"}, 0, false, true},
		{"nothing usable", llm.Response{Text: "?"}, 0, false, false},
	}
	for _, tt := range tests {
		got, fromLogp, err := Preference(tt.resp)
		if (err == nil) != tt.ok || math.Abs(got-tt.want) > 1e-9 || fromLogp != tt.fromLogp {
			t.Errorf("%s: got %v (logprobs %v), %v; want %v (logprobs %v) ok=%v", tt.name, got, fromLogp, err, tt.want, tt.fromLogp, tt.ok)
		}
	}
}

func TestTemplate(t *testing.T) {
	if err := CheckTemplate(DefaultTemplate()); err != nil {
		t.Fatalf("default template: %v", err)
	}
	tests := []struct{ name, text, want string }{
		{"no user section", "[system]\nhi", "no [user] section"},
		{"missing placeholder", "[user]\n{{description}} {{instruction}} {{output_m}}", "{{output_M}}"},
		{"repeated section", "[user]\n{{description}}{{instruction}}{{output_m}}{{output_M}}\n[user]\nx", "line 3"},
		{"text before sections", "hello\n[user]\n{{description}}{{instruction}}{{output_m}}{{output_M}}", "line 1"},
	}
	for _, tt := range tests {
		if err := CheckTemplate(tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	j := NewLLM(nil, LLMOptions{Template: "[user]\n<{{description}}|{{instruction}}|{{output_m}}|{{output_M}}>"})
	msgs, err := j.Prompt("D", "P", "{{output_M}}", "B")
	if err != nil || len(msgs) != 1 || msgs[0].Content != "<D|P|{{output_M}}|B>" {
		t.Errorf("Prompt = %+v, %v; want one substitution pass", msgs, err)
	}
	bad := NewLLM(nil, LLMOptions{Template: "[system]\nx"})
	if _, err := bad.Compare(context.Background(), "d", "p", "a", "b"); err == nil {
		t.Error("bad template: want Compare to fail")
	}
}
