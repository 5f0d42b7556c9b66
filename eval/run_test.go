package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/ckpt"
	"fspo/dataset"
	"fspo/episode"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/modelpath"
	"fspo/tokenizer"
)

// fixture is a tiny data folder and runs made from the real stories260K
// model: held-out users who like a word, judged by counting it.
type fixture struct {
	dir, base, tok string
	rewards        map[string]Rewarder
	kinds          map[string]string
	runs           map[string]string
}

var fixtureWords = map[string]string{"t1": "cat", "t2": "dog", "t3": "ball", "t4": "park", "h1": "cat", "h2": "dog", "h3": "tree", "h4": "sun"}

func newFixture(t *testing.T) fixture {
	t.Helper()
	paths := testenv.Model(t)
	dir := t.TempDir()
	f := fixture{dir: filepath.Join(dir, "data"), base: paths.Checkpoint, tok: paths.Tokenizer,
		rewards: map[string]Rewarder{}, kinds: map[string]string{"h4": KindUnseen}, runs: map[string]string{}}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openings := []string{"Once upon a time,", "One day,", "Lily went outside.", "Tom had a toy.", "At night,", "The sun was up."}
	var recs []dataset.Record
	for _, u := range []string{"t1", "t2", "t3", "t4", "h1", "h2", "h3", "h4"} {
		w := fixtureWords[u]
		for i, o := range openings {
			recs = append(recs, dataset.Record{User: u, Prompt: o, Description: "likes the word " + w,
				Chosen:   fmt.Sprintf("there was a %s. The %s was happy %d.", w, w, i),
				Rejected: fmt.Sprintf("there was a boy. He was sad %d.", i), Source: "test"})
		}
		if u[0] == 'h' {
			f.rewards[u] = wordReward(w)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(f.dir, PreferencesFile)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := dataset.Describe(path)
	if err != nil {
		t.Fatal(err)
	}
	man := dataset.Manifest{Version: dataset.ManifestVersion, Domain: "test", Seed: 1, Created: "2026-01-01T00:00:00Z",
		TrainUsers: []string{"t1", "t2", "t3", "t4"}, TestUsers: []string{"h1", "h2", "h3", "h4"}, Interpolated: []string{"h3"},
		Files: map[string]dataset.FileInfo{PreferencesFile: fi}}
	if err := dataset.WriteManifest(f.dir, man); err != nil {
		t.Fatal(err)
	}
	// Runs: the base weights perturbed, saved as fspo train saves them.
	base, err := model.Load(paths.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	save := func(name, variant string, seed uint64, meta map[string]string) string {
		m := base.Clone()
		rng := rand.New(rand.NewPCG(seed, 1))
		for _, tn := range m.W.Tensors(m.Config) {
			for i := range tn.Data {
				tn.Data[i] += 0.02 * float32(rng.NormFloat64())
			}
		}
		cp, err := m.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		cp.Meta = map[string]string{"variant": variant, "layout": "compact", "shots": "2", "train_config": `{"stage":"pref","beta":0.1}`}
		for k, v := range meta {
			cp.Meta[k] = v
		}
		run := filepath.Join(dir, name)
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := ckpt.Save(filepath.Join(run, modelpath.CheckpointFile), cp); err != nil {
			t.Fatal(err)
		}
		return run
	}
	f.runs[PrefFT] = save("prefft", "plain", 1, nil)
	f.runs[FSPO] = save("fspo", "plain", 2, map[string]string{"init": filepath.Join(f.runs[PrefFT], modelpath.CheckpointFile)})
	f.runs[IPO] = save("ipo", "zero-shot", 3, nil)
	f.runs[FSPOCOT] = save("fspo_cot", "cot", 4, map[string]string{"init": filepath.Join(f.runs[PrefFT], modelpath.CheckpointFile)})
	f.runs[FSPOOnPolicy] = save("fspo_onpolicy", "plain", 5, map[string]string{"init": filepath.Join(f.runs[FSPO], modelpath.CheckpointFile)})
	f.runs[FSPOCOTOnPolicy] = save("fspo_cot_onpolicy", "cot", 6, map[string]string{"init": filepath.Join(f.runs[FSPOCOT], modelpath.CheckpointFile)})
	return f
}

func (f fixture) config(out string) Config {
	c := Defaults()
	c.Data, c.Base, c.Tokenizer, c.Out = f.dir, f.base, f.tok, out
	c.Runs, c.Rewards, c.Kinds = f.runs, f.rewards, f.kinds
	c.Shots, c.Queries, c.OracleK = 2, 2, 4
	return c
}

func TestRunEndToEnd(t *testing.T) {
	f := newFixture(t)
	out := t.TempDir()
	if d := os.Getenv("EVAL_TEST_OUT"); d != "" {
		out = d
	}
	var progress bytes.Buffer
	c := f.config(out)
	c.Progress = &progress
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	checkEndToEndReport(t, rep, progress.String())
	// samples.jsonl recomputes report.json's numbers.
	samples := checkSamplesRecomputeReport(t, out)
	checkSampleScores(t, samples)
	checkReportFigures(t, out)

	// A rerun with the same seed writes the same samples.
	out2 := t.TempDir()
	if _, err := Run(context.Background(), f.config(out2)); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, SamplesJSONL))
	b, _ := os.ReadFile(filepath.Join(out2, SamplesJSONL))
	if !bytes.Equal(a, b) {
		t.Error("rerun with the same seed wrote other samples")
	}
}

// checkEndToEndReport checks the report of the fixture's run: every method
// present, the base at 50%, the queries and users of each kind, each
// preference method's accuracy with the run's β and reference, and the
// progress lines.
func checkEndToEndReport(t *testing.T, rep *Report, progress string) {
	t.Helper()
	wantMethods := Methods
	if strings.Join(rep.Methods, ",") != strings.Join(wantMethods, ",") || len(rep.Absent) != 0 {
		t.Errorf("methods %v (absent %v), want %v", rep.Methods, rep.Absent, wantMethods)
	}
	if rep.Winrates[Base] != 50 || rep.CI95[Base] != [2]float64{50, 50} {
		t.Errorf("base %v %v, want 50 [50, 50]", rep.Winrates[Base], rep.CI95[Base])
	}
	if rep.Queries != 8 || rep.Users[KindSeen] != 2 || rep.Users[KindInterpolated] != 1 || rep.Users[KindUnseen] != 1 {
		t.Errorf("queries %d users %v, want 8 and 2 seen, 1 interpolated, 1 unseen", rep.Queries, rep.Users)
	}
	for _, m := range PreferenceMethods {
		a, ok := rep.Accuracy[m]
		if !ok || a.N != 8 || a.Beta != 0.1 || a.BetaSource != "run" {
			t.Errorf("%s accuracy %+v, want 8 pairs with β 0.1 from the run", m, a)
		}
	}
	if got := rep.Accuracy[FSPO].RefSource; got != "run meta init" {
		t.Errorf("fspo reference source %q, want the run's meta init", got)
	}
	if got := rep.Accuracy[IPO].Reference; !strings.HasSuffix(got, "stories260K.bin") {
		t.Errorf("ipo reference %q, want the base model", got)
	}
	if !strings.Contains(progress, "eval: fspo: generated") {
		t.Errorf("no progress lines: %q", progress)
	}
}

// checkSamplesRecomputeReport reads samples.jsonl and report.json from out
// and checks that the samples, summarized again, give the report's win
// rates, intervals, rates by kind and mean tokens; it returns the samples.
func checkSamplesRecomputeReport(t *testing.T, out string) []Sample {
	t.Helper()
	wantMethods := Methods
	samples, err := ReadSamples(filepath.Join(out, SamplesJSONL))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != len(wantMethods)*8 {
		t.Fatalf("%d samples, want %d", len(samples), len(wantMethods)*8)
	}
	var disk Report
	raw, err := os.ReadFile(filepath.Join(out, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &disk); err != nil {
		t.Fatal(err)
	}
	tb := Summarize(samples, disk.Config.Seed)
	for _, m := range wantMethods {
		if got, want := tb.Overall[m], disk.Overall[m]; got.Percent != disk.Winrates[m] || [2]float64{got.Low, got.High} != disk.CI95[m] || got != want {
			t.Errorf("%s: recomputed %+v, report %+v (winrate %v ci %v)", m, got, want, disk.Winrates[m], disk.CI95[m])
		}
		for k := range disk.ByKind {
			if got, want := tb.ByKind[k][m], disk.ByKind[k][m]; got != want {
				t.Errorf("%s %s: recomputed %+v, report %+v", k, m, got, want)
			}
		}
		if tb.MeanTokens[m] != disk.MeanTokens[m] {
			t.Errorf("%s mean tokens: recomputed %v, report %v", m, tb.MeanTokens[m], disk.MeanTokens[m])
		}
	}
	return samples
}

// checkSampleScores checks each sample's score against its reward and the
// baseline's (a parse error is a loss), and the fields each sample holds.
func checkSampleScores(t *testing.T, samples []Sample) {
	t.Helper()
	for _, s := range samples {
		if s.Reward == nil || s.BaselineReward == nil {
			t.Fatalf("sample without rewards: %+v", s)
		}
		want := 0.5
		switch {
		case s.ParseError != "":
			want = 0 // no response: a loss
		case *s.Reward > *s.BaselineReward:
			want = 1
		case *s.Reward < *s.BaselineReward:
			want = 0
		}
		if s.Score != want || s.Dropped {
			t.Errorf("sample %s/%s/%s: score %v dropped %v for rewards %v vs %v", s.Method, s.User, s.Query, s.Score, s.Dropped, *s.Reward, *s.BaselineReward)
		}
		if s.Method == Base && s.Response != s.BaselineResponse {
			t.Errorf("base sample's response differs from the baseline's")
		}
		if s.Method == FSPOCOT && s.ParseError == "" && s.ResponseDescription == "" {
			t.Errorf("fspo_cot sample without a description or parse error: %+v", s)
		}
		if s.Description == "" || s.Prompt == "" {
			t.Errorf("sample without description or prompt: %+v", s)
		}
	}
}

// checkReportFigures checks that report.md holds the table's rows and the
// kinds, and that winrates.png is a PNG of some width.
func checkReportFigures(t *testing.T, out string) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(out, ReportMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| base | 50.0 [50.0, 50.0]", "| fspo_cot | ", "interpolated", "unseen"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	pf, err := os.Open(filepath.Join(out, WinratesPNG))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatalf("winrates.png: %v", err)
	}
	if img.Bounds().Dx() < 100 {
		t.Errorf("winrates.png is %v", img.Bounds())
	}
}

func TestRunAbsentAndErrors(t *testing.T) {
	f := newFixture(t)
	c := f.config(t.TempDir())
	c.Runs = map[string]string{FSPO: f.runs[FSPO]}
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{PrefFT, IPO, FSPOCOT} {
		if rep.Absent[m] != "no model given" {
			t.Errorf("%s: absent %q, want \"no model given\"", m, rep.Absent[m])
		}
		if _, ok := rep.Winrates[m]; ok {
			t.Errorf("%s has a win rate though absent", m)
		}
	}
	md, _ := os.ReadFile(filepath.Join(c.Out, ReportMD))
	if !bytes.Contains(md, []byte("| ipo | absent: no model given")) {
		t.Errorf("report.md does not show ipo absent:\n%s", md)
	}

	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"user without reward", func(c *Config) {
			c.Rewards = map[string]Rewarder{"h1": wordReward("cat")}
		}, "has no reward"},
		{"run trained with another prompt", func(c *Config) { c.Runs = map[string]string{IPO: f.runs[FSPO]} }, "trained with variant plain, given variant zero-shot"},
		{"shots other than the runs'", func(c *Config) { c.Shots = 6 }, "trained with shots 2, given shots 6"},
		{"too many shots for the users", func(c *Config) { c.Shots, c.Runs = 6, nil }, "fewer than 7 records"},
		{"missing data", func(c *Config) { c.Data = filepath.Join(f.dir, "nope") }, "nope"},
		{"prompt too long for the context", func(c *Config) { c.MaxTokens = 600 }, "leaves 505 of the model's 512 positions, fewer than the 600-token response cap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := f.config(t.TempDir())
			tc.edit(&c)
			_, err := Run(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestRunContextLimited sets the response cap so that the plain prompts
// just fit and the COT ones (whose cap adds the description) do not: the
// COT responses are generated within the context and counted.
func TestRunContextLimited(t *testing.T) {
	f := newFixture(t)
	c := f.config(t.TempDir())
	d, err := loadData(c)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(c.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	g := &generator{cfg: c, tok: tokenizer.Llama2C(tok), layout: episode.Compact}
	longest := 0
	for _, ep := range d.episodes {
		for _, v := range []episode.Variant{episode.Plain, episode.COT} {
			p, err := g.prompt(v, ep)
			if err != nil {
				t.Fatal(err)
			}
			longest = max(longest, len(p))
		}
	}
	c.MaxTokens = 512 - longest
	c.Runs = map[string]string{FSPO: f.runs[FSPO], FSPOCOT: f.runs[FSPOCOT]}
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ContextLimited[FSPOCOT] == 0 || rep.ContextLimited[FSPO] != 0 {
		t.Errorf("context-limited responses %v, want some of fspo_cot and none of fspo", rep.ContextLimited)
	}
}
