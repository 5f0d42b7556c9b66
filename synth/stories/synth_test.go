package stories

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"fspo/dataset"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/tokenizer"
)

var (
	loadOnce sync.Once
	testM    *model.Model
	testTok  *tokenizer.Tokenizer
	loadErr  error
)

// base loads the built-in stories260K once.
func base(t *testing.T) (*model.Model, tokenizer.Codec) {
	t.Helper()
	paths := testenv.Model(t)
	loadOnce.Do(func() {
		if testM, loadErr = model.Load(paths.Checkpoint); loadErr != nil {
			return
		}
		testTok, loadErr = tokenizer.Load(paths.Tokenizer)
	})
	if loadErr != nil {
		t.Fatalf("base model: %v", loadErr)
	}
	return testM, tokenizer.Llama2C(testTok)
}

// smallOptions is a run of a second or two with several generation chunks.
func smallOptions(dir string) Options {
	o := QuickOptions()
	o.Out = dir
	o.Batch = 16 // 72 candidates: 5 chunks
	return o
}

// files reads every file of dir except config.json, with the manifest's
// creation time removed (it is the only thing that may differ between two
// directories made by the same run).
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Name() == ConfigName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == dataset.ManifestName {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "created")
			data, _ = json.Marshal(m)
		}
		out[e.Name()] = data
	}
	return out
}

func sameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d (%v)", what, len(got), len(want), names)
	}
	for _, n := range names {
		if !bytes.Equal(got[n], want[n]) {
			t.Errorf("%s: %s differs (%d bytes, want %d)", what, n, len(got[n]), len(want[n]))
		}
	}
}

func TestSynthesizeOutputs(t *testing.T) {
	m, tok := base(t)
	dir := t.TempDir()
	rep, err := Synthesize(context.Background(), m, tok, smallOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	man, err := dataset.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := man.Verify(dir); err != nil {
		t.Error(err)
	}
	uf, err := LoadUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, test := uf.Split()
	if strings.Join(man.TrainUsers, ",") != strings.Join(train, ",") || strings.Join(man.TestUsers, ",") != strings.Join(test, ",") ||
		strings.Join(man.Interpolated, ",") != strings.Join(uf.OfKind(Interpolated), ",") || man.Notes["unseen"] != strings.Join(uf.OfKind(Unseen), ",") {
		t.Errorf("manifest split %v / %v / %v / %q does not match users.json", man.TrainUsers, man.TestUsers, man.Interpolated, man.Notes["unseen"])
	}
	recs, err := dataset.ReadAll(filepath.Join(dir, PreferencesName))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != rep.Records || rep.Records == 0 {
		t.Fatalf("%d records in the file, report says %d", len(recs), rep.Records)
	}
	checkSynthesizedRecords(t, recs, uf, tok)
	checkSynthesisReport(t, dir, rep, uf, m.Positions())
}

// checkSynthesizedRecords checks every record against its user: the
// description and source fields, scores that are the user's exact rewards,
// the margin of unflipped labels, held-out openings for held-out users only,
// and chosen texts within the long-text cap.
func checkSynthesizedRecords(t *testing.T, recs []dataset.Record, uf *UsersFile, tok tokenizer.Codec) {
	t.Helper()
	heldOut := map[string]bool{}
	for _, p := range HeldOutPrompts() {
		heldOut[p] = true
	}
	for _, r := range recs {
		u, ok := uf.User(r.User)
		if !ok {
			t.Fatalf("record %s: unknown user %s", r.ID, r.User)
		}
		if r.Description != u.Description || r.Source != "stories" || r.RejectedDescription != "" || r.Meta["rejected_persona"] == "" {
			t.Errorf("record %s: description/source fields %q %q %q %q", r.ID, r.Description, r.Source, r.RejectedDescription, r.Meta["rejected_persona"])
		}
		// Scores are the user's exact rewards of the texts, and unflipped
		// labels clear the margin.
		if *r.ChosenScore != u.Reward(r.Chosen) || *r.RejectedScore != u.Reward(r.Rejected) {
			t.Errorf("record %s: scores %v, %v are not the rewards %v, %v", r.ID, *r.ChosenScore, *r.RejectedScore, u.Reward(r.Chosen), u.Reward(r.Rejected))
		}
		if d := *r.ChosenScore - *r.RejectedScore; r.Meta["flipped"] == "false" && d < QuickOptions().MinMargin-1e-9 {
			t.Errorf("record %s: margin %v below the minimum", r.ID, d)
		}
		if heldOut[r.Prompt] != (u.Kind != Train) {
			t.Errorf("record %s: %s user %s on opening %q", r.ID, u.Kind, u.ID, r.Prompt)
		}
		if len(tok.Encode(r.Chosen, false)) > QuickOptions().LongTokens {
			t.Errorf("record %s: chosen %q longer than %d tokens", r.ID, r.Chosen, QuickOptions().LongTokens)
		}
	}
}

// checkSynthesisReport checks the disagreement files, report.md and the
// report's statistics: users who disagree, a best-of-pool text that beats
// the base more often than a random steered one, plausible pool statistics,
// and compact episodes that fit the model's positions.
func checkSynthesisReport(t *testing.T, dir string, rep *Report, uf *UsersFile, positions int) {
	t.Helper()
	var dis DisagreementFile
	data, _ := os.ReadFile(filepath.Join(dir, DisagreementJSON))
	if err := json.Unmarshal(data, &dis); err != nil || len(dis.Rate) != len(uf.Users) {
		t.Fatalf("disagreement.json: %v, %d rows", err, len(dis.Rate))
	}
	if rep.MeanDisagreement < 0.2 {
		t.Errorf("users disagree on only %.2f of pairs; they should differ", rep.MeanDisagreement)
	}
	if png, _ := os.ReadFile(filepath.Join(dir, DisagreementPNG)); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("disagreement.png is not a PNG")
	}
	md, _ := os.ReadFile(filepath.Join(dir, ReportMDName))
	for _, want := range []string{"distinct-1", "self-similarity", "label entropy", "Disagreement"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, k := range []Kind{Train, HeldOut, Interpolated, Unseen} {
		if b, s := rep.BestVsBase[k], rep.SteeredVsBase[k]; b <= s || b < 0.5 {
			t.Errorf("%s users: best of pool wins %.2f against the base, a random steered candidate %.2f", k, b, s)
		}
	}
	if rep.Distinct1 <= 0 || rep.Distinct2 <= rep.Distinct1 || rep.SelfSimilarity <= 0 || rep.SelfSimilarity >= 1 {
		t.Errorf("pool statistics implausible: %+v", rep)
	}
	if s := rep.EpisodeTokens["compact/plain"]; s.Max == 0 || s.Max > positions {
		t.Errorf("longest compact 4-shot episode %d tokens, want in (0, %d]", s.Max, positions)
	}
}

// TestSynthesizeDeterministicAndResumable runs once straight through, then
// again in a fresh directory interrupted after the second generation chunk
// and resumed, then damages the result the way a crash would (a partial
// candidate line, a cut preferences file, no manifest) and resumes again:
// every run ends with the same files.
func TestSynthesizeDeterministicAndResumable(t *testing.T) {
	m, tok := base(t)
	ref := t.TempDir()
	if _, err := Synthesize(context.Background(), m, tok, smallOptions(ref)); err != nil {
		t.Fatal(err)
	}
	want := files(t, ref)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	opt := smallOptions(dir)
	opt.Log = cancelAfter{n: new(int), at: 2, cancel: cancel}
	if _, err := Synthesize(ctx, m, tok, opt); err == nil {
		t.Fatal("interrupted run returned no error")
	}
	cands, _ := os.ReadFile(filepath.Join(dir, CandidatesName))
	if n := bytes.Count(cands, []byte("\n")); n == 0 || n >= 72 {
		t.Fatalf("interrupted run left %d candidates, want some but not all", n)
	}
	if _, err := os.Stat(filepath.Join(dir, dataset.ManifestName)); err == nil {
		t.Error("interrupted run wrote a manifest")
	}
	if _, err := Synthesize(context.Background(), m, tok, smallOptions(dir)); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, "resumed", files(t, dir), want)

	// A crash: the last candidate chunk half written, half the preferences
	// written, no reports.
	cands, _ = os.ReadFile(filepath.Join(dir, CandidatesName))
	lines := bytes.SplitAfter(cands, []byte("\n"))
	os.WriteFile(filepath.Join(dir, CandidatesName), append(bytes.Join(lines[:len(lines)-5], nil), lines[len(lines)-5][:30]...), 0o644)
	prefs, _ := os.ReadFile(filepath.Join(dir, PreferencesName))
	pl := bytes.SplitAfter(prefs, []byte("\n"))
	os.WriteFile(filepath.Join(dir, PreferencesName), append(bytes.Join(pl[:len(pl)/2], nil), pl[len(pl)/2][:40]...), 0o644)
	for _, n := range []string{dataset.ManifestName, ReportJSONName, DisagreementPNG} {
		os.Remove(filepath.Join(dir, n))
	}
	if _, err := Synthesize(context.Background(), m, tok, smallOptions(dir)); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, "repaired", files(t, dir), want)

	// Other settings into the same directory: a clear error, nothing changed.
	other := smallOptions(dir)
	other.PairsPerUser = 7
	if _, err := Synthesize(context.Background(), m, tok, other); err == nil || !strings.Contains(err.Error(), "pairs_per_user was 10, now 7") {
		t.Errorf("rerun with other settings: error %v", err)
	}
	sameFiles(t, "after a refused rerun", files(t, dir), want)
}

// cancelAfter is a progress log that cancels the run at its at-th line.
type cancelAfter struct {
	n      *int
	at     int
	cancel context.CancelFunc
}

func (c cancelAfter) Write(p []byte) (int, error) {
	if *c.n++; *c.n == c.at {
		c.cancel()
	}
	return len(p), nil
}

func TestOptionsCheck(t *testing.T) {
	tests := []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Out = "" }, "no output directory"},
		{func(o *Options) { o.Users = 3 }, "users = 3"},
		{func(o *Options) { o.Prompts = 41 }, "prompts = 41: must be in 1..40"},
		{func(o *Options) { o.PoolSize = 1 }, "pool_size = 1"},
		{func(o *Options) { o.MinMargin = 0 }, "min_margin = 0"},
		{func(o *Options) { o.Noise = -1 }, "noise = -1"},
		{func(o *Options) { o.TopP = 1.5 }, "top_p = 1.5"},
		{func(o *Options) { o.ShortTokens = 50 }, "short_tokens/long_tokens"},
		{func(o *Options) {}, ""},
	}
	for _, tc := range tests {
		o := DefaultOptions()
		o.Out = "x"
		tc.edit(&o)
		err := o.Check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check() = %v, want %q", err, tc.want)
		}
	}
}
