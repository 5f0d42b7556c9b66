package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fspo/llm/llmtest"
	"fspo/synth/recipe/recipetest"
)

// TestSynthRecipeHelperProcess is the CLI run as a child process by
// TestSynthRecipeKillResume (the test binary re-executes itself).
func TestSynthRecipeHelperProcess(t *testing.T) {
	if os.Getenv("FSPO_SYNTH_HELPER") != "1" {
		t.Skip("helper process only")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("FSPO_SYNTH_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
	if err := Run(context.Background(), env, args); err != nil {
		fmt.Fprintln(os.Stderr, "fspo:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func synthChild(t *testing.T, args []string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSynthRecipeHelperProcess$")
	cmd.Env = append(os.Environ(), "FSPO_SYNTH_HELPER=1", "FSPO_SYNTH_ARGS="+string(a))
	return cmd
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestSynthRecipeKillResume kills the CLI with SIGKILL mid-run (twice: once
// while it generates, once while it writes records), reruns the same
// command, and checks the result is byte-for-byte the file of an
// uninterrupted run, and that no finished call was sent again.
func TestSynthRecipeKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	slow := func(req llmtest.ChatRequest) llmtest.Reply {
		r := recipetest.Script(req)
		r.Delay = 4 * time.Millisecond
		return r
	}
	dir := t.TempDir()
	args := func(url, out string) []string {
		return []string{"synth", "--recipe", "reviews", "--endpoint", url, "--model", "m1",
			"--out", out, "--questions", "4", "--responses", "3", "--seed", "42", "--workers", "4"}
	}

	ref := llmtest.New(slow)
	defer ref.Close()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if err := Run(context.Background(), env, args(ref.BaseURL, filepath.Join(dir, "ref"))); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join(dir, "ref", "preferences.jsonl"))
	if err != nil || len(want) == 0 {
		t.Fatalf("uninterrupted run wrote %d bytes (%v)", len(want), err)
	}
	totalCalls := len(ref.Requests())

	srv := llmtest.New(slow)
	defer srv.Close()
	out := filepath.Join(dir, "crash")
	prefs := filepath.Join(out, "preferences.jsonl")
	kills := killSynthChildren(t, srv, args(srv.BaseURL, out), prefs, totalCalls, len(want))
	if got := fileSize(prefs); got == 0 || got >= int64(len(want)) {
		t.Errorf("after the kills the file has %d of %d bytes: the kills did not land mid-write", got, len(want))
	}
	cmd := synthChild(t, args(srv.BaseURL, out))
	var cerr bytes.Buffer
	cmd.Stderr = &cerr
	if err := cmd.Run(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, cerr.String())
	}
	got, err := os.ReadFile(prefs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("resumed preferences.jsonl (%d bytes) differs from the uninterrupted run's (%d bytes)", len(got), len(want))
	}
	checkNoFinishedCallRepeated(t, srv.Requests(), kills, totalCalls)
	if !strings.Contains(cerr.String(), "synth:") {
		t.Errorf("no progress on stderr: %s", cerr.String())
	}
}

// killSynthChildren runs the CLI with args as a child process and kills it
// with SIGKILL, twice: once after a quarter of the uninterrupted run's
// totalCalls requests reached srv (while it generates), once when prefs
// holds a third of the uninterrupted run's wantLen bytes (while it writes
// records). It returns the number of kills.
func killSynthChildren(t *testing.T, srv *llmtest.Server, args []string, prefs string, totalCalls, wantLen int) int {
	t.Helper()
	kills := 0
	for _, until := range []func() bool{
		func() bool { return len(srv.Requests()) > totalCalls/4 }, // while generating
		func() bool { return fileSize(prefs) > int64(wantLen)/3 }, // while writing records
	} {
		cmd := synthChild(t, args)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.Success() {
			t.Fatalf("child was not killed (it finished first?): %v", err)
		}
		kills++
		t.Logf("kill %d: %d requests so far (of %d), %d of %d bytes written", kills, len(srv.Requests()), totalCalls, fileSize(prefs), wantLen)
	}
	return kills
}

// checkNoFinishedCallRepeated checks the requests across the killed and
// resumed runs: only calls unfinished at a kill may repeat, and the distinct
// requests are the uninterrupted run's totalCalls.
func checkNoFinishedCallRepeated(t *testing.T, reqs []llmtest.ChatRequest, kills, totalCalls int) {
	t.Helper()
	// A finished call is never sent again: a request body may repeat only if
	// it was unfinished at a kill — in flight (at most the client's
	// concurrency, 8) or answered but not yet committed to the cache (the
	// concurrency slot is free again by then: at most 8 more).
	seen := map[[32]byte]int{}
	repeats := 0
	for _, r := range reqs {
		b, _ := json.Marshal(r)
		k := sha256.Sum256(b)
		if seen[k]++; seen[k] > 1 {
			repeats++
		}
	}
	if repeats > kills*16 {
		t.Errorf("%d requests repeated across %d kills, want <= %d", repeats, kills, kills*16)
	}
	if n := len(reqs); n-repeats != totalCalls {
		t.Errorf("distinct requests across the runs = %d, want %d as in the uninterrupted run", n-repeats, totalCalls)
	}
}

func TestSynthRecipeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"synth", "--recipe", "", "--out", "x"}, "--recipe is required"},
		{[]string{"synth", "--recipe", "reviews", "--out", "x"}, "--endpoint URL and --model"},
		{[]string{"synth", "--recipe", "reviews", "--out", "x", "--endpoint", "u", "--model", "m", "--shard", "3/3"}, "--shard \"3/3\""},
		{[]string{"synth", "--recipe", "nosuch", "--out", "x", "--endpoint", "u", "--model", "m"}, "not built in"},
		{[]string{"synth", "merge", "--out", "x"}, "part directories"},
	} {
		var b bytes.Buffer
		err := Run(context.Background(), &Env{Stdout: &b, Stderr: &b, Getenv: os.Getenv}, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

// TestSynthRecipeEnsembleConfig runs with --config: two endpoints (models
// m1 and m2) share the candidate responses, and the records say which
// model wrote each response.
func TestSynthRecipeEnsembleConfig(t *testing.T) {
	srv := llmtest.New(recipetest.Script)
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "llm.yaml")
	yaml := fmt.Sprintf("endpoints:\n  - {name: a, base_url: %q, model: m1, embedding_model: e1}\n  - {name: b, base_url: %q, model: m2}\nconcurrency: 4\nretries: 2\n", srv.BaseURL, srv.BaseURL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}
	err := Run(context.Background(), env, []string{"synth", "--recipe", "elix", "--config", cfg, "--out", filepath.Join(dir, "out"),
		"--users", "3", "--questions", "3", "--responses", "4", "--seed", "5"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "preferences.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`"chosen_model":"m1"`, `"chosen_model":"m2"`} {
		if !bytes.Contains(b, []byte(m)) {
			t.Errorf("no record with %s: the ensemble was not used", m)
		}
	}
	if !strings.Contains(out.String(), "0 calls finally failed") {
		t.Errorf("summary: %s", out.String())
	}
}
