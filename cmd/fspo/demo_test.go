package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"fspo/eval"
	"fspo/train"
)

// TestDemoQuick runs `fspo demo --quick` end to end on stories260K (synth,
// the five trainings two at a time, eval): the table names every method,
// report.json has a win rate and interval for each, a rerun into the same
// folder retrains nothing and prints the same table, and a run interrupted
// mid-training and rerun ends with the same table too.
func TestDemoQuick(t *testing.T) {
	p := sharedModel(t)
	out := filepath.Join(t.TempDir(), "demo")
	stdout, stderr, err := runCLI(t, "demo", "--quick", "--model", p.Checkpoint, "--out", out)
	if err != nil {
		t.Fatalf("demo --quick: %v\n%s", err, stderr)
	}
	for _, m := range eval.Methods {
		if !strings.Contains(stdout, "\n"+m+" ") {
			t.Errorf("the demo's table has no row for %s:\n%s", m, stdout)
		}
	}
	rep := readEvalReport(t, filepath.Join(out, "eval"))
	for _, m := range eval.Methods {
		w, ok := rep.Winrates[m]
		ci := rep.CI95[m]
		if !ok || w < 0 || w > 100 || ci[0] > w || ci[1] < w {
			t.Errorf("report.json: %s win rate %v (present %v), ci95 %v", m, w, ok, ci)
		}
	}
	e := rep.Elicitation
	if e == nil || len(e.Random) != len(eval.ElicitLabels) || len(e.Active) != len(eval.ElicitLabels) || len(rep.BestOf) != 2 || rep.COTTrueDescription == nil {
		t.Errorf("report.json: elicitation %+v, best_of %v, cot_true_description %v: want every curve point, best of 1 and 2, the true-description row", e, rep.BestOf, rep.COTTrueDescription)
	} else if _, err := os.Stat(filepath.Join(out, "eval", eval.ElicitationPNG)); err != nil {
		t.Errorf("no elicitation plot: %v", err)
	}
	for _, st := range demoStages {
		if _, err := os.Stat(filepath.Join(out, "runs", st.name, train.ModelFile)); err != nil {
			t.Errorf("training %s left no model: %v", st.name, err)
		}
		if !strings.Contains(stderr, "== train "+st.name+" done") {
			t.Errorf("no completion line for training %s in:\n%s", st.name, stderr)
		}
	}

	stdout2, stderr2, err := runCLI(t, "demo", "--quick", "--model", p.Checkpoint, "--out", out)
	if err != nil {
		t.Fatalf("demo --quick rerun: %v\n%s", err, stderr2)
	}
	for _, st := range demoStages {
		if !strings.Contains(stderr2, "== train "+st.name+": already done") {
			t.Errorf("rerun did not skip training %s:\n%s", st.name, stderr2)
		}
	}
	if demoTable(t, stdout2) != demoTable(t, stdout) {
		t.Errorf("rerun printed another table:\n%s\nfirst run:\n%s", demoTable(t, stdout2), demoTable(t, stdout))
	}

	// Interrupted as soon as the first training is done (the second is then
	// mid-way), then rerun: it resumes and ends with the same table.
	out2 := filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOnLine{prefix: "== train ", part: " done in ", cancel: cancel}
	err = Run(ctx, &Env{Stdout: io.Discard, Stderr: w, Stdin: strings.NewReader(""), Getenv: os.Getenv},
		[]string{"demo", "--quick", "--model", p.Checkpoint, "--out", out2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted demo = %v, want context.Canceled\n%s", err, w.String())
	}
	stdout3, stderr3, err := runCLI(t, "demo", "--quick", "--model", p.Checkpoint, "--out", out2)
	if err != nil {
		t.Fatalf("resumed demo: %v\n%s", err, stderr3)
	}
	if !strings.Contains(stderr3, ": already done") {
		t.Errorf("the resumed demo retrained everything:\n%s", stderr3)
	}
	if demoTable(t, stdout3) != demoTable(t, stdout) {
		t.Errorf("interrupted and resumed demo printed another table:\n%s\nuninterrupted:\n%s", demoTable(t, stdout3), demoTable(t, stdout))
	}
}

// demoTable is the win-rate table of the demo's output.
func demoTable(t *testing.T, stdout string) string {
	t.Helper()
	i, j := strings.Index(stdout, "\nmethod "), strings.Index(stdout, "\nfspo demo finished")
	if i < 0 || j < i {
		t.Fatalf("no table in the demo's output:\n%s", stdout)
	}
	return stdout[i:j]
}

// cancelOnLine collects output and calls cancel at the first line that
// starts with prefix and contains part.
type cancelOnLine struct {
	mu           sync.Mutex
	b            strings.Builder
	prefix, part string
	cancel       func()
}

func (c *cancelOnLine) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Write(p)
	for _, l := range strings.Split(string(p), "\n") {
		if strings.HasPrefix(l, c.prefix) && strings.Contains(l, c.part) {
			c.cancel()
		}
	}
	return len(p), nil
}

func (c *cancelOnLine) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
