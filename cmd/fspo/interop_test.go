package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportExportCommands(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		for i := 0; i < 5; i++ {
			b, _ := json.Marshal(map[string]any{"x": "question " + string(rune('a'+i)), "yw": "good " + u, "yl": "bad " + u + string(rune('a'+i)),
				"level": u, "score_persona": "persona of " + u})
			lines = append(lines, string(b))
		}
	}
	src := filepath.Join(dir, "roleplay.jsonl")
	if err := os.WriteFile(src, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	var out bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}
	if err := Run(context.Background(), env, []string{"import", "--out", data, "--test-frac", "0.25", src}); err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "roleplay layout, 20 rows, 20 records (0 already present), 4 users") {
		t.Errorf("import output: %s", out.String())
	}
	eps := filepath.Join(dir, "eps.jsonl")
	out.Reset()
	// 3 train users × 5 records, 4 shots: 1 episode per pass, 2(4+1) = 10 passes.
	if err := Run(context.Background(), env, []string{"export", "--data", data, "--out", eps, "--shots", "4"}); err != nil {
		t.Fatalf("export: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(eps)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != 30 {
		t.Errorf("exported %d episodes, want 30\n%s", got, out.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--out", data}, "one input file"},
		{[]string{"import", "--out", data, "--layout", "csv", src}, "--layout \"csv\""},
		{[]string{"import", "--out", data, filepath.Join(dir, "nosuch.jsonl")}, "no such file"},
		{[]string{"export", "--data", data, "--out", eps, "--variant", "fancy"}, "--variant"},
		{[]string{"export", "--data", data, "--out", eps, "--split", "dev"}, "--split \"dev\""},
	} {
		err := Run(context.Background(), env, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
