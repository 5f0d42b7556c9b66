package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/dataset"
)

func TestSynthStoriesCLI(t *testing.T) {
	p := sharedModel(t)
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"synth", "--domain", "stories", "--quick", "--users", "9", "--pairs", "6", "--model", p.Checkpoint, "--out", dir}
	out, _, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "of 9 users (6 train, 1 heldout, 1 interpolated, 1 unseen)") {
		t.Errorf("summary %q", out)
	}
	man, err := dataset.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if man.Domain != "stories" || len(man.TrainUsers) != 6 || len(man.TestUsers) != 3 || len(man.Interpolated) != 1 {
		t.Errorf("manifest %+v", man)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "preferences.jsonl"))
	// A rerun of the same command finds everything done and changes nothing.
	if _, _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "preferences.jsonl"))
	if string(first) != string(again) {
		t.Error("rerun changed preferences.jsonl")
	}
	// Other flags into the same directory are refused, naming the setting.
	_, _, err = runCLI(t, "synth", "--quick", "--users", "9", "--pairs", "7", "--model", p.Checkpoint, "--out", dir)
	if err == nil || !strings.Contains(err.Error(), "pairs_per_user was 6, now 7") {
		t.Errorf("rerun with other flags: %v", err)
	}
}

func TestSynthUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"synth"}, "--out DIR is required"},
		{[]string{"synth", "--domain", "reviews", "--out", "x"}, `unknown --domain "reviews"`},
		{[]string{"synth", "--out", "x", "--users", "2"}, "users = 2"},
		{[]string{"synth", "--out", "x", "--pool", "1"}, "pool_size = 1"},
		{[]string{"synth", "--out", "x", "--margin", "0"}, "min_margin = 0"},
		{[]string{"synth", "--out", "x", "--unsteered", "1"}, "unsteered = 1"},
		{[]string{"synth", "--out", "x", "stray"}, `unexpected argument "stray"`},
		// --recipe and merge go to the LLM recipe pipeline.
		{[]string{"synth", "--recipe", "reviews", "--out", "x"}, "--endpoint URL and --model"},
		{[]string{"synth", "--out", "x", "-recipe=reviews"}, "--endpoint URL and --model"},
		{[]string{"synth", "merge", "--out", "x"}, "part directories"},
	}
	for _, tc := range tests {
		_, _, err := runCLI(t, tc.args...)
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fspo %s: error %v, want a usage error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
