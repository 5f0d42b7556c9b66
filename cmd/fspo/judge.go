package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"fspo/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"fspo/judge"
	"fspo/llm"
)

func init() {
	register(&command{name: "judge", summary: "re-judge a samples.jsonl with an LLM judge: win rates with CIs, LC win rates, report.md/json", run: runJudge})
}

// judgeSample is the part of a samples.jsonl row the judge reads; other
// fields are ignored. Pointers tell a missing field from an empty one.
type judgeSample struct {
	User             *string `json:"user"`
	Description      *string `json:"description"`
	Method           *string `json:"method"`
	Prompt           *string `json:"prompt"`
	Response         *string `json:"response"`
	BaselineResponse *string `json:"baseline_response"`
}

// judgeRow is a validated sample.
type judgeRow struct {
	line                                                  int
	user, description, method, prompt, response, baseline string
}

// judgedPair is one line of judged.jsonl.
type judgedPair struct {
	Line     int     `json:"line"` // of the samples file
	User     string  `json:"user"`
	Method   string  `json:"method"`
	Forward  float64 `json:"p_response_first"` // P(response preferred), response shown as m
	Backward float64 `json:"p_baseline_first"` // P(baseline preferred), baseline shown as m
	Score    float64 `json:"score"`
	Dropped  bool    `json:"dropped"`
	Failed   string  `json:"failed,omitempty"` // failure kind when the judge gave no verdict
	Error    string  `json:"error,omitempty"`
}

// judgeMethod is one method's row of the report.
type judgeMethod struct {
	Method  string         `json:"method"`
	WinRate judge.Summary  `json:"win_rate"`
	LC      *judge.LC      `json:"lc_win_rate"`
	LCError string         `json:"lc_error,omitempty"`
	Failed  map[string]int `json:"failed"` // pairs without a verdict, by failure kind
}

// judgeReport is report.json.
type judgeReport struct {
	Samples       string        `json:"samples"`
	SamplesSHA256 string        `json:"samples_sha256"`
	Endpoints     []string      `json:"endpoints"`
	Template      string        `json:"template"`
	TemplateSHA   string        `json:"template_sha256"`
	Seed          int64         `json:"seed"`
	Resamples     int           `json:"bootstrap_resamples"`
	Pairs         int           `json:"pairs"`
	Methods       []judgeMethod `json:"methods"`
	Usage         judge.Usage   `json:"judge_usage"`
	LLM           llm.Stats     `json:"llm"`
	Elapsed       string        `json:"elapsed"`
}

func runJudge(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "judge", "--samples samples.jsonl (--endpoint URL --model NAME | --config llm.yaml) --out DIR [flags]")
	lf := addLLMFlags(fs, " of the judge", "")
	samples := fs.String("samples", "", "samples.jsonl to re-judge (rows: user, description, method, prompt, response, baseline_response)")
	priceIn := fs.Float64("price-in", 0, "price per million prompt tokens at --endpoint, for the cost column")
	priceOut := fs.Float64("price-out", 0, "price per million completion tokens at --endpoint")
	out := fs.String("out", "", "output directory: report.json, report.md, judged.jsonl")
	template := fs.String("template", "", "judge prompt file (default: the built-in judge/prompts/alpaca_pairwise_user.txt)")
	seed := fs.Int64("seed", 1, "seed of the judge calls and of the bootstrap")
	workers := fs.Int("workers", 8, "pairs judged at once (also the call concurrency with --endpoint)")
	noLogprobs := fs.Bool("no-logprobs", false, "do not ask for log-probs (endpoints that reject them); the answer letter decides")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *samples == "":
		return fmt.Errorf("%w: fspo judge: --samples FILE is required (the samples.jsonl of fspo eval)", errUsage)
	case *out == "":
		return fmt.Errorf("%w: fspo judge: --out DIR is required", errUsage)
	case lf.check("fspo judge") != nil:
		return lf.check("fspo judge")
	case *workers <= 0:
		return fmt.Errorf("%w: fspo judge: --workers %d must be > 0", errUsage, *workers)
	case *priceIn < 0 || *priceOut < 0:
		return fmt.Errorf("%w: fspo judge: prices must be >= 0", errUsage)
	}
	start := time.Now()
	rows, digest, err := readJudgeSamples(*samples)
	if err != nil {
		return err
	}
	tmpl, err := loadJudgeTemplate(*template)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("fspo judge: %w", err)
	}
	ens, cfg, cache, err := lf.open(env, "fspo judge", llm.Config{Concurrency: *workers}, llm.Endpoint{PriceIn: *priceIn, PriceOut: *priceOut}, *out)
	if err != nil {
		return err
	}
	defer cache.Close()
	jopts := judge.LLMOptions{Template: tmpl, Seed: *seed, Cache: cache}
	if *noLogprobs {
		jopts.TopLogprobs = -1
	}
	j := judge.NewLLM(ens, jopts)

	pairs, outs, err := judgeAll(ctx, env, j, rows, *workers, *samples)
	if err != nil {
		return err
	}
	rep := judgeReport{Samples: *samples, SamplesSHA256: digest, Template: *template, Seed: *seed,
		Resamples: judge.Resamples, Pairs: len(rows), Usage: j.Usage(), LLM: ens.Stats().Add(cache.Stats()),
		Elapsed: time.Since(start).Round(time.Millisecond).String()}
	rep.describeJudge(tmpl, cfg.Endpoints)
	rep.Methods = summarizeJudged(rows, pairs, outs, *seed)
	if err := writeJudgeOutputs(*out, rep, pairs); err != nil {
		return err
	}
	rep.print(env.Stdout, filepath.Join(*out, "report.md"))
	return nil
}

// print writes each method's win rates and the totals.
func (rep *judgeReport) print(w io.Writer, mdPath string) {
	for _, m := range rep.Methods {
		fmt.Fprintf(w, "%-16s %s  LC %s  failed %d\n", m.Method, m.WinRate, lcText(m), countAll(m.Failed))
	}
	fmt.Fprintf(w, "%d pairs, %d calls (%d cached), %d tokens in, %d out, cost %.4f; see %s\n",
		rep.Pairs, rep.Usage.Calls, rep.Usage.Cached, rep.Usage.PromptTokens, rep.Usage.CompletionTokens, rep.Usage.Cost, mdPath)
}

// describeJudge records the judge's template (name and hash) and endpoints.
func (rep *judgeReport) describeJudge(tmpl string, endpoints []llm.Endpoint) {
	if rep.Template == "" {
		rep.Template = "builtin:alpaca_pairwise_user.txt"
	}
	th := sha256.Sum256([]byte(tmpl))
	rep.TemplateSHA = hex.EncodeToString(th[:])
	for _, e := range endpoints {
		rep.Endpoints = append(rep.Endpoints, e.BaseURL+" "+e.Model)
	}
}

// loadJudgeTemplate reads the judge prompt at path (the built-in one when
// path is empty) and checks it.
func loadJudgeTemplate(path string) (string, error) {
	tmpl := judge.DefaultTemplate()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("fspo judge: %w", err)
		}
		tmpl = string(b)
	}
	if err := judge.CheckTemplate(tmpl); err != nil {
		return "", fmt.Errorf("fspo judge: %s: %w", path, err)
	}
	return tmpl, nil
}

// judgeAll judges every row in both orders, workers at a time. A pair the
// judge gives no verdict for is recorded as failed; other errors stop the run.
func judgeAll(ctx context.Context, env *Env, j *judge.LLM, rows []judgeRow, workers int, samples string) ([]judgedPair, []judge.Outcome, error) {
	pairs := make([]judgedPair, len(rows))
	outs := make([]judge.Outcome, len(rows))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	done := 0
	for i, r := range rows {
		g.Go(func() error {
			o, err := judge.BothOrders(gctx, j, r.description, r.prompt, r.response, r.baseline)
			p := judgedPair{Line: r.line, User: r.user, Method: r.method}
			switch {
			case err == nil:
				p.Forward, p.Backward, p.Score, p.Dropped = o.Forward, o.Backward, o.Score, o.Dropped
			case gctx.Err() != nil:
				return gctx.Err()
			case errors.Is(err, judge.ErrUnparsable):
				p.Failed, p.Error = "unparsable", err.Error()
			case errors.As(err, new(*llm.CallError)):
				p.Failed, p.Error = llm.FailureKind(err), err.Error()
			default:
				return fmt.Errorf("fspo judge: %s line %d: %w", samples, r.line, err)
			}
			pairs[i], outs[i] = p, o
			mu.Lock()
			done++
			if done%100 == 0 {
				fmt.Fprintf(env.Stderr, "judged %d/%d pairs\n", done, len(rows))
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return pairs, outs, nil
}

// readJudgeSamples reads and validates the samples file; it returns the
// rows and the file's sha256.
func readJudgeSamples(path string) ([]judgeRow, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("fspo judge: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(f, h))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var rows []judgeRow
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var s judgeSample
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return nil, "", fmt.Errorf("fspo judge: %s line %d: %w", path, line, err)
		}
		fields := []struct {
			name     string
			v        *string
			nonEmpty bool
		}{{"user", s.User, true}, {"description", s.Description, false}, {"method", s.Method, true},
			{"prompt", s.Prompt, true}, {"response", s.Response, false}, {"baseline_response", s.BaselineResponse, false}}
		for _, fl := range fields {
			if fl.v == nil || (fl.nonEmpty && *fl.v == "") {
				return nil, "", fmt.Errorf("fspo judge: %s line %d: field %q is missing or empty", path, line, fl.name)
			}
		}
		rows = append(rows, judgeRow{line: line, user: *s.User, description: *s.Description, method: *s.Method,
			prompt: *s.Prompt, response: *s.Response, baseline: *s.BaselineResponse})
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("fspo judge: %s line %d: %w", path, len(rows)+1, err)
	}
	if len(rows) == 0 {
		return nil, "", fmt.Errorf("fspo judge: %s: no samples", path)
	}
	return rows, hex.EncodeToString(h.Sum(nil)), nil
}

// summarizeJudged computes each method's win rate, LC win rate and
// failures, methods in order of first appearance.
func summarizeJudged(rows []judgeRow, pairs []judgedPair, outs []judge.Outcome, seed int64) []judgeMethod {
	var order []string
	byMethod := map[string]*struct {
		outs   []judge.Outcome
		users  []string
		failed map[string]int
	}{}
	for i, r := range rows {
		m := byMethod[r.method]
		if m == nil {
			m = &struct {
				outs   []judge.Outcome
				users  []string
				failed map[string]int
			}{failed: map[string]int{}}
			byMethod[r.method] = m
			order = append(order, r.method)
		}
		if pairs[i].Failed != "" {
			m.failed[pairs[i].Failed]++
			continue
		}
		m.outs = append(m.outs, outs[i])
		m.users = append(m.users, r.user)
	}
	var res []judgeMethod
	for _, name := range order {
		m := byMethod[name]
		jm := judgeMethod{Method: name, WinRate: judge.WinRate(m.outs, m.users, seed), Failed: m.failed}
		if lc, err := judge.LengthControlled(m.outs); err != nil {
			jm.LCError = err.Error()
		} else {
			jm.LC = &lc
		}
		res = append(res, jm)
	}
	return res
}

func lcText(m judgeMethod) string {
	if m.LC == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", m.LC.Percent)
}

func countAll(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// writeJudgeOutputs writes judged.jsonl, report.json and report.md, each
// through a temporary file and a rename.
func writeJudgeOutputs(dir string, rep judgeReport, pairs []judgedPair) error {
	var jl strings.Builder
	for _, p := range pairs {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("fspo judge: encode judged pair: %w", err)
		}
		jl.Write(b)
		jl.WriteByte('\n')
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("fspo judge: encode report: %w", err)
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# LLM judge report\n\nSamples: `%s` (sha256 %s…), %d pairs, each judged in both orders; judge: %s; prompt: %s.\n\n",
		rep.Samples, rep.SamplesSHA256[:12], rep.Pairs, strings.Join(rep.Endpoints, ", "), rep.Template)
	md.WriteString("Win rate against the baseline in percent, 95% bootstrap interval over users (" +
		fmt.Sprint(rep.Resamples) + " resamples); LC = length-controlled win rate (AlpacaEval 2.0, Dubois et al. 2024); " +
		"dropped = verdicts that flipped with the order; failed = pairs the judge gave no verdict for.\n\n")
	md.WriteString("| Method | Win rate | 95% CI | LC win rate | n | Wins / ties / losses | Dropped | Failed |\n")
	md.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range rep.Methods {
		w := m.WinRate
		rate, ci := "-", "-"
		if w.N > 0 {
			rate, ci = fmt.Sprintf("%.1f", w.Percent), fmt.Sprintf("[%.1f, %.1f]", w.Low, w.High)
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %d | %d / %d / %d | %d | %d |\n",
			m.Method, rate, ci, lcText(m), w.N, w.Wins, w.Ties, w.Losses, w.Dropped, countAll(m.Failed))
	}
	u, s := rep.Usage, rep.LLM
	fmt.Fprintf(&md, "\nJudge calls: %d (%d from the cache); verdicts from log-probs %d, from text %d, unparsable %d.\n",
		u.Calls, u.Cached, u.FromLogprobs, u.FromText, u.Unparsable)
	fmt.Fprintf(&md, "Tokens of calls made now: %d in, %d out; cost %.4f; latency p50 %v, p99 %v; retries %d; calls failed after retries: %d.\n",
		s.PromptTokens, s.CompletionTokens, s.Cost, s.LatencyP50.Round(time.Millisecond), s.LatencyP99.Round(time.Millisecond), s.Retries, s.FailureCount())
	for _, f := range []struct {
		name string
		data []byte
	}{{"judged.jsonl", []byte(jl.String())}, {"report.json", append(js, '\n')}, {"report.md", []byte(md.String())}} {
		path := filepath.Join(dir, f.name)
		if err := atomicfile.WriteBytes(path, f.data); err != nil {
			return fmt.Errorf("fspo judge: %w", err)
		}
	}
	return nil
}
