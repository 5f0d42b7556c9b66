package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/eval"
	"fspo/train"
)

// TestDemoQuick runs `fspo demo --quick` end to end on stories260K (synth,
// the five trainings two at a time, eval): the table names every method,
// report.json has a win rate and interval for each, and a rerun into the
// same folder resumes (nothing retrained) and prints the same table.
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
	table := func(s string) string {
		return s[strings.Index(s, "\nmethod "):strings.Index(s, "\nfspo demo finished")]
	}
	if table(stdout2) != table(stdout) {
		t.Errorf("rerun printed another table:\n%s\nfirst run:\n%s", table(stdout2), table(stdout))
	}
}
