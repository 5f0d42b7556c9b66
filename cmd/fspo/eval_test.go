package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/eval"
	"fspo/llm/llmtest"
)

// evalData synthesizes a small stories data folder.
func evalData(t *testing.T) string {
	t.Helper()
	p := sharedModel(t)
	dir := filepath.Join(t.TempDir(), "data")
	if _, stderr, err := runCLI(t, "synth", "--domain", "stories", "--quick", "--model", p.Checkpoint, "--out", dir); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr)
	}
	return dir
}

func readEvalReport(t *testing.T, dir string) eval.Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, eval.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestEvalCommand(t *testing.T) {
	data := evalData(t)
	p := sharedModel(t)
	out := t.TempDir()
	stdout, stderr, err := runCLI(t, "eval", "--data", data, "--out", out, "--base", p.Checkpoint, "--quick")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	rep := readEvalReport(t, out)
	for _, m := range []string{eval.Base, eval.FewShot, eval.OracleBK} {
		if _, ok := rep.Winrates[m]; !ok {
			t.Errorf("no win rate for %s: %v", m, rep.Winrates)
		}
	}
	for _, m := range eval.TrainedMethods {
		if rep.Absent[m] == "" {
			t.Errorf("%s not reported absent: %v", m, rep.Absent)
		}
	}
	if rep.Winrates[eval.Base] != 50 || rep.Config.Judge != "reward" || rep.Config.OracleK != 4 || rep.Config.Queries != 2 {
		t.Errorf("base %v, judge %q, oracle k %d, queries %d; want 50, reward, 4, 2", rep.Winrates[eval.Base], rep.Config.Judge, rep.Config.OracleK, rep.Config.Queries)
	}
	// users.json sets the kinds: the quick data has every kind.
	for _, k := range eval.Kinds {
		if rep.Users[k] == 0 {
			t.Errorf("no %s users: %v", k, rep.Users)
		}
	}
	if !strings.Contains(stdout, "| oracle | ") || !strings.Contains(stderr, "eval: oracle: generated") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	for _, f := range []string{eval.ReportMD, eval.SamplesJSONL, eval.WinratesPNG} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestEvalLLMJudge runs the LLM judge path against a scripted server that
// always prefers the output shown first: every pair of different responses
// flips between the orders and is dropped; base against itself is a tie
// decided without a call.
func TestEvalLLMJudge(t *testing.T) {
	data := evalData(t)
	p := sharedModel(t)
	srv := llmtest.New(func(llmtest.ChatRequest) llmtest.Reply { return llmtest.Reply{Text: "m"} })
	defer srv.Close()
	out := t.TempDir()
	_, stderr, err := runCLI(t, "eval", "--data", data, "--out", out, "--base", p.Checkpoint, "--quick",
		"--judge", "llm", "--endpoint", srv.BaseURL, "--model", "judge-model")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	rep := readEvalReport(t, out)
	if rep.Config.Judge != "llm" || rep.JudgeUsage == nil || rep.JudgeUsage.Calls == 0 {
		t.Fatalf("judge %q usage %+v, want llm calls", rep.Config.Judge, rep.JudgeUsage)
	}
	if rep.Winrates[eval.Base] != 50 {
		t.Errorf("base %v, want 50", rep.Winrates[eval.Base])
	}
	if rep.Dropped[eval.FewShot] == 0 {
		t.Errorf("position-biased judge dropped no pair: %v", rep.Dropped)
	}
	if got, want := len(srv.Requests()), rep.JudgeUsage.Calls; got != want {
		t.Errorf("server saw %d requests, usage says %d calls", got, want)
	}
	if _, err := os.Stat(filepath.Join(out, "llm-cache.sqlite")); err != nil {
		t.Errorf("no call cache: %v", err)
	}
}

func TestEvalUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--out", "x"}, "--data and --out are required"},
		{[]string{"eval", "--data", "d", "--out", "x", "--judge", "llm"}, "--judge llm needs --endpoint URL and --model NAME"},
		{[]string{"eval", "--data", "d", "--out", "x", "--judge", "gpt"}, `--judge "gpt" is not reward or llm`},
		{[]string{"eval", "--data", "d", "--out", "x", "stray"}, "unexpected argument"},
	}
	for _, tc := range tests {
		_, _, err := runCLI(t, tc.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}
