package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/modelpath"
)

// recorder is a testing.TB that records a fatal error or a skip instead of
// stopping; the methods testenv does not call are left nil.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }
func (r *recorder) Skip(a ...any)             { r.skip = fmt.Sprint(a...) }

func TestModelIsThePublishedOne(t *testing.T) {
	p := Model(t)
	for _, f := range modelpath.Known[modelpath.DefaultModel] {
		path := p.Checkpoint
		if f.Name == filepath.Base(p.Tokenizer) {
			path = p.Tokenizer
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 || filepath.Base(path) != f.Name {
			t.Errorf("%s: sha256 %x, want %s for %s", path, sum, f.SHA256, f.Name)
		}
	}
}

func TestReference(t *testing.T) {
	for _, name := range []string{"reference-greedy-n64.txt", "reference-greedy-cat-n100.txt", "reference-logprobs.json", "reference-grads.json"} {
		if got := Reference(t, name); len(got) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
	r := &recorder{}
	Reference(r, "no-such-file.json")
	if !strings.Contains(r.fatal, "no-such-file.json") {
		t.Errorf("missing reference: fatal %q, want it named", r.fatal)
	}
}

// TestMissingService: an absent service skips the test, or fails it when CI
// is set; a service that is present is returned.
func TestMissingService(t *testing.T) {
	t.Setenv(EnvPostgres, "")
	t.Setenv(EnvChromium, "")
	t.Setenv("PATH", t.TempDir()) // no chromium on it
	for _, ci := range []string{"", "true"} {
		t.Setenv(EnvCI, ci)
		for name, get := range map[string]func(testing.TB) string{"postgres": Postgres, "chromium": Chromium} {
			r := &recorder{}
			get(r)
			switch {
			case ci == "" && (r.skip == "" || r.fatal != ""):
				t.Errorf("%s without CI: skip %q, fatal %q; want a skip", name, r.skip, r.fatal)
			case ci != "" && (r.fatal == "" || r.skip != "" || !strings.Contains(r.fatal, "CI must run this test")):
				t.Errorf("%s with CI: skip %q, fatal %q; want a failure", name, r.skip, r.fatal)
			}
		}
	}

	t.Setenv(EnvCI, "")
	t.Setenv(EnvPostgres, "postgres://db")
	if r := (&recorder{}); Postgres(r) != "postgres://db" || r.skip != "" || r.fatal != "" {
		t.Errorf("Postgres with %s set: skip %q, fatal %q", EnvPostgres, r.skip, r.fatal)
	}
	bin := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, bin)
	if r := (&recorder{}); Chromium(r) != bin || r.skip != "" || r.fatal != "" {
		t.Errorf("Chromium with %s set: skip %q, fatal %q", EnvChromium, r.skip, r.fatal)
	}
	// A path that names nothing is a mistake, not an absent service.
	t.Setenv(EnvChromium, bin+"-missing")
	r := &recorder{}
	Chromium(r)
	if !strings.Contains(r.fatal, EnvChromium) || r.skip != "" {
		t.Errorf("Chromium with a wrong %s: skip %q, fatal %q; want a failure", EnvChromium, r.skip, r.fatal)
	}
}
