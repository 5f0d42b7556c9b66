package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/llm/llmtest"
)

// catJudge prefers the output that mentions a cat; "garble" in either
// output makes it answer nonsense.
func catJudge(r llmtest.ChatRequest) llmtest.Reply {
	p := r.Last()
	_, rest, _ := strings.Cut(p, "### Model m\n\n")
	m, _, _ := strings.Cut(rest, "\n\n### Model M")
	if strings.Contains(p, "garble") {
		return llmtest.Reply{Text: "I cannot decide."}
	}
	if strings.Contains(m, "cat") {
		return llmtest.Reply{Text: "m"}
	}
	return llmtest.Reply{Text: "M"}
}

func writeSamples(t *testing.T, rows []map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rows {
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestJudgeCommand(t *testing.T) {
	srv := llmtest.New(catJudge)
	defer srv.Close()
	var rows []map[string]any
	for u := range 4 {
		for q := range 3 {
			user := fmt.Sprintf("u%d", u)
			prompt := fmt.Sprintf("Tell story %d", q)
			rows = append(rows,
				map[string]any{"user": user, "description": user + " loves cats.", "method": "good", "prompt": prompt,
					"response": "A cat purred.", "baseline_response": "A dog barked.", "kind": "ignored"},
				map[string]any{"user": user, "description": user + " loves cats.", "method": "bad", "prompt": prompt,
					"response": "A dog howled.", "baseline_response": "A cat meowed."})
		}
	}
	rows = append(rows, map[string]any{"user": "u0", "description": "d", "method": "bad", "prompt": "p",
		"response": "garble", "baseline_response": "x"})
	samples := writeSamples(t, rows)
	out := t.TempDir()
	args := []string{"judge", "--samples", samples, "--endpoint", srv.BaseURL, "--model", "judge-model", "--out", out, "--workers", "4"}
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if err := Run(context.Background(), env, args); err != nil {
		t.Fatalf("judge: %v\n%s", err, stderr.String())
	}
	var rep judgeReport
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Methods) != 2 || rep.Methods[0].Method != "good" || rep.Methods[1].Method != "bad" {
		t.Fatalf("methods %+v", rep.Methods)
	}
	good, bad := rep.Methods[0], rep.Methods[1]
	if good.WinRate.Percent != 100 || good.WinRate.N != 12 || good.WinRate.Users != 4 || good.WinRate.Low != 100 || countAll(good.Failed) != 0 {
		t.Errorf("good: %+v failed %v", good.WinRate, good.Failed)
	}
	if bad.WinRate.Percent != 0 || bad.WinRate.N != 12 || bad.Failed["unparsable"] != 1 {
		t.Errorf("bad: %+v failed %v", bad.WinRate, bad.Failed)
	}
	if good.LC == nil || good.LC.Percent < 95 {
		t.Errorf("good LC %+v (%s)", good.LC, good.LCError)
	}
	calls := len(srv.Requests())
	if calls != 2*len(rows)-1 { // the garbled pair stops after its first order
		t.Errorf("server saw %d requests, want %d", calls, 2*len(rows)-1)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(md), "| good | 100.0 | [100.0, 100.0] |") {
		t.Errorf("report.md:\n%s", md)
	}
	judged, err := os.ReadFile(filepath.Join(out, "judged.jsonl"))
	if n := strings.Count(string(judged), "\n"); err != nil || n != len(rows) {
		t.Errorf("judged.jsonl has %d lines, want %d (%v)", n, len(rows), err)
	}

	// A rerun is answered by the cache (the unparsable answer too: the call
	// itself succeeded); same report numbers.
	stdout.Reset()
	if err := Run(context.Background(), env, args); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Requests()) - calls; got != 0 {
		t.Errorf("rerun sent %d requests, want 0", got)
	}
	var rep2 judgeReport
	b, _ = os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(b, &rep2); err != nil {
		t.Fatal(err)
	}
	if rep2.Methods[0].WinRate != good.WinRate || rep2.Usage.Cached != 2*len(rows)-1 || rep2.Methods[1].Failed["unparsable"] != 1 {
		t.Errorf("rerun: %+v, cached %d", rep2.Methods[0].WinRate, rep2.Usage.Cached)
	}
}

func TestJudgeCommandErrors(t *testing.T) {
	good := map[string]any{"user": "u", "description": "d", "method": "m", "prompt": "p", "response": "r", "baseline_response": "b"}
	missing := map[string]any{"user": "u", "description": "d", "method": "m", "prompt": "p", "response": "r"}
	samples := writeSamples(t, []map[string]any{good, missing})
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"no samples", []string{"--endpoint", "http://x/v1", "--model", "m", "--out", "o"}, "--samples", true},
		{"no endpoint", []string{"--samples", samples, "--out", "o"}, "--endpoint", true},
		{"both config and endpoint", []string{"--samples", samples, "--out", "o", "--config", "c.yaml", "--endpoint", "u", "--model", "m"}, "not both", true},
		{"missing field", []string{"--samples", samples, "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--out", t.TempDir()}, `line 2: field "baseline_response"`, false},
		{"missing file", []string{"--samples", "/nonexistent.jsonl", "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--out", t.TempDir()}, "nonexistent", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			env := &Env{Stdout: &buf, Stderr: &buf, Getenv: func(string) string { return "" }}
			err := Run(context.Background(), env, append([]string{"judge"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, errUsage) != tt.usage {
				t.Errorf("err = %v, want one mentioning %q (usage %v)", err, tt.want, tt.usage)
			}
		})
	}
}
