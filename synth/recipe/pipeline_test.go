package recipe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fspo/dataset"
	"fspo/llm"
	"fspo/llm/llmtest"
	"fspo/synth/recipe/recipetest"
)

// newClient starts a scripted server and returns a cached client for it.
func newClient(t testing.TB, script llmtest.Script, cachePath string) (llm.Client, *llmtest.Server) {
	t.Helper()
	srv := llmtest.New(script)
	t.Cleanup(srv.Close)
	ens, err := llm.New(llm.Config{
		Endpoints:      []llm.Endpoint{{BaseURL: srv.BaseURL, Model: "m1", EmbeddingModel: "e1", PriceIn: 1, PriceOut: 2}},
		Concurrency:    8,
		Retries:        3,
		Timeout:        llm.Duration(5 * time.Second),
		InitialBackoff: time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := llm.NewCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	return llm.Cached(ens, cache), srv
}

func mustLoad(t testing.TB, name string) *Recipe {
	t.Helper()
	r, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunReviews(t *testing.T) {
	dir := t.TempDir()
	client, _ := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	out := filepath.Join(dir, "out")
	rep, err := Run(context.Background(), Config{Recipe: mustLoad(t, "reviews"), Client: client, Out: out, Questions: 4, Responses: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dataset.ReadAll(filepath.Join(out, "preferences.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.Validate(recs, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), rep.Records; got != want || got == 0 {
		t.Fatalf("records in file %d, report %d (want equal, > 0)", got, want)
	}
	if rep.Users != 8 {
		t.Errorf("users = %d, want 8", rep.Users)
	}
	// Records of a user are contiguous and users appear in index order.
	last := -1
	for _, r := range recs {
		idx := r.Meta["user_index"]
		if idx == "" || r.Source != "reviews" || r.RejectedDescription == "" {
			t.Fatalf("record %s lacks provenance: %+v", r.ID, r)
		}
		n := int(idx[0] - '0')
		if n < last {
			t.Fatalf("user index %d after %d", n, last)
		}
		last = n
	}
	m, err := dataset.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(out); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(m.Interpolated, ","), "negative+concise,negative+verbose,positive+concise,positive+verbose"; got != want {
		t.Errorf("interpolated = %s, want %s", got, want)
	}
	if len(m.TrainUsers) != 4 {
		t.Errorf("train users = %v, want the 4 single-trait users", m.TrainUsers)
	}
	if rep.Calls.FailedCalls != 0 {
		t.Errorf("failed calls = %d, want 0: %+v", rep.Calls.FailedCalls, rep.Calls.Failures)
	}
	if s := rep.Similarity; s.NGram <= 0 || s.NGram >= 1 || s.Embedding == nil {
		t.Errorf("similarity = %+v, want n-gram in (0,1) and an embedding value", s)
	}
	if rep.EntropyAfter > rep.EntropyBefore {
		t.Errorf("entropy after refinement %.3f > before %.3f", rep.EntropyAfter, rep.EntropyBefore)
	}
	if rep.Calls.PromptTokens == 0 || rep.Calls.Cost == 0 {
		t.Errorf("tokens/cost not accounted: %+v", rep.Calls)
	}
	for _, f := range []string{"report.json", "report.md", "disagreement.png", "run.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if d := rep.Disagreement; d == nil || len(d.Users) != 8 || d.Rate[0][0] != 0 {
		t.Errorf("disagreement matrix = %+v, want 8 users and 0 on the diagonal", d)
	}
}

// TestRerunIsCachedAndIdempotent reruns a finished run: no new call reaches
// the server, nothing is written twice, the file is unchanged.
func TestRerunIsCachedAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	client, srv := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	out := filepath.Join(dir, "out")
	cfg := Config{Recipe: mustLoad(t, "reviews"), Client: client, Out: out, Users: 4, Questions: 3, Responses: 3, Seed: 3}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, filepath.Join(out, "preferences.jsonl"))
	calls := len(srv.Requests())
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Requests()); got != calls {
		t.Errorf("rerun sent %d new requests, want 0", got-calls)
	}
	if rep.Written != 0 || rep.Calls.Cached != rep.Calls.Calls {
		t.Errorf("rerun wrote %d records, %d of %d calls cached; want 0 written, all cached", rep.Written, rep.Calls.Cached, rep.Calls.Calls)
	}
	if after := readFile(t, filepath.Join(out, "preferences.jsonl")); !bytes.Equal(before, after) {
		t.Error("rerun changed preferences.jsonl")
	}
	// A different run into the same directory is refused.
	cfg.Seed = 4
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("run with another seed into the same dir: err = %v, want one naming seed", err)
	}
}

// TestResumeAfterCut cuts the output mid-record (as a crash would) and
// checks that the rerun restores exactly the uninterrupted file.
func TestResumeAfterCut(t *testing.T) {
	dir := t.TempDir()
	client, _ := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	out := filepath.Join(dir, "out")
	cfg := Config{Recipe: mustLoad(t, "reviews"), Client: client, Out: out, Users: 5, Questions: 3, Responses: 3, Seed: 5}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "preferences.jsonl")
	want := readFile(t, path)
	for _, cut := range []int{len(want) / 3, len(want)/2 + 7, len(want) - 1} {
		if err := os.WriteFile(path, want[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); !bytes.Equal(got, want) {
			t.Fatalf("cut at %d: resumed file differs (%d bytes, want %d)", cut, len(got), len(want))
		}
	}
}

// TestFaults: transient faults are retried and change nothing; calls that
// finally fail are counted and listed, and the run still completes.
func TestFaults(t *testing.T) {
	dir := t.TempDir()
	cleanClient, _ := newClient(t, recipetest.Script, filepath.Join(dir, "clean.sqlite"))
	cfg := Config{Recipe: mustLoad(t, "reviews"), Users: 4, Questions: 3, Responses: 3, Seed: 11}
	cfg.Client, cfg.Out = cleanClient, filepath.Join(dir, "clean")
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	flaky := recipetest.Flaky(3, 2, llmtest.ServerError, recipetest.Flaky(5, 1, llmtest.RateLimit, recipetest.Script))
	flakyClient, srv := newClient(t, flaky, filepath.Join(dir, "flaky.sqlite"))
	cfg.Client, cfg.Out = flakyClient, filepath.Join(dir, "flaky")
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Calls.FailedCalls != 0 {
		t.Errorf("retryable faults: %d calls failed, want 0: %+v", rep.Calls.FailedCalls, rep.Calls.Failures)
	}
	retried := 0
	for _, r := range srv.Requests() {
		if r.Attempt > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no request was retried: the faults were not injected")
	}
	if a, b := readFile(t, filepath.Join(dir, "clean", "preferences.jsonl")), readFile(t, filepath.Join(dir, "flaky", "preferences.jsonl")); !bytes.Equal(a, b) {
		t.Error("retried faults changed the output")
	}

	// Judge calls for one user's description fail for good.
	broken := recipetest.Broken("## User Description\nThis user prefers concise reviews.", recipetest.Script)
	brokenClient, _ := newClient(t, broken, filepath.Join(dir, "broken.sqlite"))
	cfg.Client, cfg.Out = brokenClient, filepath.Join(dir, "broken")
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var concise UserStat
	for _, u := range rep.PerUser {
		if u.User == "concise" {
			concise = u
		}
	}
	if concise.Failed == 0 || concise.Kept != 0 {
		t.Errorf("user concise: %+v, want failed pairs and none kept", concise)
	}
	if rep.Calls.FailedCalls == 0 || rep.Calls.FailedCalls != len(rep.Calls.Failures) || rep.Calls.Stages["label"].Failed != rep.Calls.FailedCalls {
		t.Errorf("failed calls %d, listed %d, label stage %d; want equal and > 0", rep.Calls.FailedCalls, len(rep.Calls.Failures), rep.Calls.Stages["label"].Failed)
	}
	md := string(readFile(t, filepath.Join(dir, "broken", "report.md")))
	if !strings.Contains(md, "calls that finally failed") || !strings.Contains(md, "| client |") {
		t.Errorf("report.md does not list the failed calls:\n%s", md)
	}
	if rep.Records == 0 {
		t.Error("no records despite only one user's calls failing")
	}
}

// TestShardMergeEqualsUnsharded builds roleplay (generated personas, global
// and trait questions) in one run and in three shards, and merges them.
func TestShardMergeEqualsUnsharded(t *testing.T) {
	dir := t.TempDir()
	r := mustLoad(t, "roleplay")
	base := Config{Recipe: r, Users: 7, Questions: 3, Responses: 3, Seed: 2}
	client, _ := newClient(t, recipetest.Script, filepath.Join(dir, "all.sqlite"))
	cfg := base
	cfg.Client, cfg.Out = client, filepath.Join(dir, "all")
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records == 0 || rep.Users != 7 {
		t.Fatalf("unsharded run: %d users, %d records", rep.Users, rep.Records)
	}
	var parts []string
	for i := 0; i < 3; i++ {
		c, _ := newClient(t, recipetest.Script, filepath.Join(dir, "part.sqlite"))
		cfg := base
		cfg.Client, cfg.Out, cfg.Shard, cfg.Shards = c, filepath.Join(dir, "part", string(rune('0'+i))), i, 3
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, cfg.Out)
	}
	// Parts given in any order merge to the same file.
	mrep, err := Merge(context.Background(), filepath.Join(dir, "merged"), []string{parts[2], parts[0], parts[1]})
	if err != nil {
		t.Fatal(err)
	}
	want := readFile(t, filepath.Join(dir, "all", "preferences.jsonl"))
	if got := readFile(t, filepath.Join(dir, "merged", "preferences.jsonl")); !bytes.Equal(got, want) {
		t.Fatalf("merged file (%d bytes) differs from unsharded (%d bytes)", len(got), len(want))
	}
	if mrep.Records != rep.Records || mrep.Users != rep.Users {
		t.Errorf("merged report: %d users %d records, want %d %d", mrep.Users, mrep.Records, rep.Users, rep.Records)
	}
	m1, _ := dataset.ReadManifest(filepath.Join(dir, "all"))
	m2, err := dataset.ReadManifest(filepath.Join(dir, "merged"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m1.TestUsers, ",") != strings.Join(m2.TestUsers, ",") || m1.Files["preferences.jsonl"] != m2.Files["preferences.jsonl"] {
		t.Errorf("merged manifest %+v differs from unsharded %+v", m2, m1)
	}

	for _, tc := range []struct {
		name  string
		parts []string
		want  string
	}{
		{"missing shard", parts[:2], "missing"},
		{"same shard twice", []string{parts[0], parts[0], parts[1]}, "overlap"},
		{"other run", []string{parts[0], parts[1], filepath.Join(dir, "all")}, "differs"},
	} {
		_, err := Merge(context.Background(), filepath.Join(dir, "bad-"+tc.name), tc.parts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestRefinementAppendsClauses: undecided pairs make the judge append
// clauses; records carry the refined description.
func TestRefinementAppendsClauses(t *testing.T) {
	dir := t.TempDir()
	client, _ := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	r := mustLoad(t, "elix-easy")
	rep, err := Run(context.Background(), Config{Recipe: r, Client: client, Out: filepath.Join(dir, "out"), Questions: 6, Responses: 4, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	refined := 0
	for _, u := range rep.PerUser {
		if len(u.Clauses) > r.Refine.Rounds {
			t.Errorf("user %s: %d clauses, more than %d rounds", u.User, len(u.Clauses), r.Refine.Rounds)
		}
		if len(u.Clauses) > 0 {
			refined++
		}
	}
	if refined == 0 {
		t.Fatal("no user was refined")
	}
	if !(rep.EntropyAfter < rep.EntropyBefore) {
		t.Errorf("entropy %.3f -> %.3f, want a decrease", rep.EntropyBefore, rep.EntropyAfter)
	}
	recs, err := dataset.ReadAll(filepath.Join(dir, "out", "preferences.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	withClause := 0
	for _, rec := range recs {
		if recipetest.Clauses(rec.Description) > 0 {
			withClause++
		}
	}
	if withClause == 0 {
		t.Error("no record carries a refined description")
	}
}

// BenchmarkRunReviews runs the full reviews recipe (8 users, 40 questions
// each, 4 candidates) against the scripted server; -benchtime=1x.
func BenchmarkRunReviews(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		client, srv := newClient(b, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
		rep, err := Run(context.Background(), Config{Recipe: mustLoad(b, "reviews"), Client: client, Out: filepath.Join(dir, "out"), Seed: int64(i)})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(srv.Requests())), "requests")
		b.ReportMetric(float64(rep.Records), "records")
		b.ReportMetric(rep.EntropyBefore, "H_before")
		b.ReportMetric(rep.EntropyAfter, "H_after")
	}
}

// TestRerunRecoversFailedCallsInOrder: a run where one user's judge calls
// fail for good, rerun once the endpoint answers them (same cache), ends
// with exactly the file of a run that never failed.
func TestRerunRecoversFailedCallsInOrder(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Recipe: mustLoad(t, "reviews"), Users: 4, Questions: 3, Responses: 3, Seed: 13}
	clean, _ := newClient(t, recipetest.Script, filepath.Join(dir, "clean.sqlite"))
	cfg.Client, cfg.Out = clean, filepath.Join(dir, "clean")
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := readFile(t, filepath.Join(dir, "clean", "preferences.jsonl"))

	cache := filepath.Join(dir, "shared.sqlite")
	broken, _ := newClient(t, recipetest.Broken("## User Description\nThis user prefers negative reviews.", recipetest.Script), cache)
	cfg.Client, cfg.Out = broken, filepath.Join(dir, "out")
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Calls.FailedCalls == 0 {
		t.Fatal("no call failed")
	}
	var log strings.Builder
	fixed, _ := newClient(t, recipetest.Script, cache)
	cfg.Client, cfg.Log = fixed, &log
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Calls.FailedCalls != 0 || !strings.Contains(log.String(), "rebuilding") {
		t.Errorf("rerun: %d failed calls, log %q; want 0 and a rebuild", rep.Calls.FailedCalls, log.String())
	}
	if got := readFile(t, filepath.Join(dir, "out", "preferences.jsonl")); !bytes.Equal(got, want) {
		t.Errorf("recovered file (%d bytes) differs from the clean run's (%d bytes)", len(got), len(want))
	}
}

// TestAlpacaJudgeLabels labels with the project's AlpacaEval-style judge
// (letter log-probabilities) instead of the structured prompt.
func TestAlpacaJudgeLabels(t *testing.T) {
	src, err := builtinFS.ReadFile("recipes/elix-easy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start, end := strings.Index(text, "\nlabel:\n"), strings.Index(text, "\nrefine:\n")
	text = text[:start] + "\nlabel:\n  judge: alpaca\n  margin: 0.15\n" + text[end:]
	r, err := Parse("elix-alpaca.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	client, srv := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	rep, err := Run(context.Background(), Config{Recipe: r, Client: client, Out: filepath.Join(dir, "out"), Questions: 5, Responses: 4, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	logprobs := 0
	for _, req := range srv.Requests() {
		if req.TopLogprobs > 0 && strings.Contains(req.Last(), "### Model m") {
			logprobs++
		}
	}
	if logprobs == 0 || rep.Calls.Stages["label"].Calls != logprobs {
		t.Errorf("%d judge requests with log-probs, %d label calls; want all label calls through the judge prompt", logprobs, rep.Calls.Stages["label"].Calls)
	}
	if rep.Records == 0 || rep.Calls.FailedCalls != 0 || rep.Inconsistent == 0 {
		t.Errorf("records %d, failed calls %d, inconsistent %d; want records, no failures, and the injected position bias dropped", rep.Records, rep.Calls.FailedCalls, rep.Inconsistent)
	}
	if !(rep.EntropyAfter < rep.EntropyBefore) || rep.EntropyBefore <= 0 {
		t.Errorf("entropy %.3f -> %.3f, want a positive value that refinement lowers", rep.EntropyBefore, rep.EntropyAfter)
	}
	bad := strings.Replace(text, "margin: 0.15", "margin: 0.5", 1)
	if _, err := Parse("x.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "label.margin") {
		t.Errorf("margin 0.5: err = %v", err)
	}
}
