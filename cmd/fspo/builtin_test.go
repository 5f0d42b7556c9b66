package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/internal/testenv"
)

// TestGenerateWithBuiltinModel runs `fspo generate` with no --model on a
// machine without any model folder: an empty home, no $FSPO_MODELS, no
// ../shared above the working folder. The built-in stories260K is installed
// into the cache folder and reproduces llama2.c's greedy reference.
func TestGenerateWithBuiltinModel(t *testing.T) {
	home := t.TempDir()
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	if err := Run(context.Background(), env, []string{"generate", "--temperature", "0", "--steps", "64"}); err != nil {
		t.Fatalf("generate: %v\n%s", err, errb.String())
	}
	if want := testenv.Reference(t, "reference-greedy-n64.txt"); out.String() != string(want) {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
	for _, f := range []string{"stories260K.bin", "tok512.bin"} {
		if _, err := os.Stat(filepath.Join(home, ".cache/fspo/models/stories260K", f)); err != nil {
			t.Errorf("built-in model not installed in the cache: %v", err)
		}
	}
}
