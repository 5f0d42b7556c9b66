package modelpath

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// touch creates the named files (and their folders) under root.
func touch(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestResolve(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("cache folder layout of this test is the Linux one")
	}
	root := t.TempDir()
	touch(t, root,
		"models/stories260K/stories260K.bin", "models/stories260K/tok512.bin",
		"models/other/weights.bin", "models/other/tokenizer.bin",
		"ft/model.fspo", "ft/tok512.bin",
		"two/a.bin", "two/b.bin", "two/tok512.bin",
		"notok/x.bin",
		"empty/tok512.bin",
		// a project checkout: work/main/pkg is the test's working folder and
		// work/shared/models holds the shared models
		"work/shared/models/stories260K/stories260K.bin", "work/shared/models/stories260K/tok512.bin",
		"work/main/pkg/.keep",
		"home/.cache/fspo/models/cached/c.bin", "home/.cache/fspo/models/cached/tok512.bin",
	)
	models := filepath.Join(root, "models")
	shared := filepath.Join(root, "work/shared/models")
	wd := filepath.Join(root, "work/main/pkg")
	home := filepath.Join(root, "home")
	withModels := env(map[string]string{"FSPO_MODELS": models, "HOME": home})
	noModels := env(map[string]string{"HOME": home})

	cases := []struct {
		name, flag string
		getenv     func(string) string
		wd         string
		want       Paths
	}{
		{"default from FSPO_MODELS", "", withModels, wd,
			Paths{filepath.Join(models, "stories260K/stories260K.bin"), filepath.Join(models, "stories260K/tok512.bin")}},
		{"default from ../shared/models of a parent", "", noModels, wd,
			Paths{filepath.Join(shared, "stories260K/stories260K.bin"), filepath.Join(shared, "stories260K/tok512.bin")}},
		{"name with tokenizer.bin", "other", withModels, wd,
			Paths{filepath.Join(models, "other/weights.bin"), filepath.Join(models, "other/tokenizer.bin")}},
		{"name found in the cache", "cached", noModels, wd,
			Paths{filepath.Join(home, ".cache/fspo/models/cached/c.bin"), filepath.Join(home, ".cache/fspo/models/cached/tok512.bin")}},
		{"checkpoint file", filepath.Join(models, "other/weights.bin"), noModels, wd,
			Paths{filepath.Join(models, "other/weights.bin"), filepath.Join(models, "other/tokenizer.bin")}},
		{"folder with model.fspo", filepath.Join(root, "ft"), noModels, wd,
			Paths{filepath.Join(root, "ft/model.fspo"), filepath.Join(root, "ft/tok512.bin")}},
		{"file named explicitly among several", filepath.Join(root, "two/b.bin"), noModels, wd,
			Paths{filepath.Join(root, "two/b.bin"), filepath.Join(root, "two/tok512.bin")}},
	}
	for _, c := range cases {
		got, err := resolve(c.flag, c.getenv, c.wd)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	checkResolveErrors(t, root, models, shared, withModels, wd)
}

// checkResolveErrors checks that each way resolve can fail (under the tree
// TestResolve makes at root) gives an error naming what went wrong and
// where it looked.
func checkResolveErrors(t *testing.T, root, models, shared string, withModels func(string) string, wd string) {
	t.Helper()
	errCases := []struct {
		name, flag string
		getenv     func(string) string
		want       []string
	}{
		{"unknown name", "nosuch", withModels, []string{`model "nosuch" not found`, models, shared, "fspo pull nosuch"}},
		{"missing path", filepath.Join(root, "missing.bin"), withModels, []string{"missing.bin", "no such file"}},
		{"several checkpoints", filepath.Join(root, "two"), withModels, []string{"several checkpoints", "a.bin, b.bin"}},
		{"no tokenizer", filepath.Join(root, "notok"), withModels, []string{"no tokenizer", "tok512.bin or tokenizer.bin"}},
		{"no checkpoint", filepath.Join(root, "empty"), withModels, []string{"no checkpoint"}},
		{"tokenizer given", filepath.Join(models, "stories260K/tok512.bin"), withModels, []string{"tokenizer file"}},
		{"no cache folder", "nosuch", env(nil), []string{"no cache folder", "HOME"}},
	}
	for _, c := range errCases {
		_, err := resolve(c.flag, c.getenv, wd)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestCacheDir(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("Linux layout")
	}
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.cache/fspo/models"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/fspo/models"},
	}
	for _, c := range cases {
		got, err := CacheDir(env(c.vars))
		if err != nil || got != c.want {
			t.Errorf("CacheDir(%v) = %q, %v; want %q", c.vars, got, err, c.want)
		}
	}
	if _, err := CacheDir(env(map[string]string{"XDG_CACHE_HOME": "rel"})); err == nil {
		t.Error("relative XDG_CACHE_HOME: no error")
	}
	got, err := DefaultDir(env(map[string]string{"FSPO_MODELS": "/m", "HOME": "/h"}))
	if err != nil || got != "/m" {
		t.Errorf("DefaultDir with FSPO_MODELS = %q, %v; want /m", got, err)
	}
}

// TestBuiltinMatchesKnown checks that the files built into the binary are
// the published ones, by size and sha256.
func TestBuiltinMatchesKnown(t *testing.T) {
	for _, f := range Known[DefaultModel] {
		data, err := fs.ReadFile(builtin, f.Name)
		if err != nil {
			t.Fatalf("built-in %s: %v", f.Name, err)
		}
		if err := checkBytes(data, f); err != nil {
			t.Errorf("built-in %s: %v", f.Name, err)
		}
	}
}

// TestResolveBuiltin resolves the default model on a machine with no model
// folder anywhere: the built-in copy is installed into the cache once, by
// several resolvers at the same time, and reused afterwards.
func TestResolveBuiltin(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("cache folder layout of this test is the Linux one")
	}
	home, wd := t.TempDir(), t.TempDir()
	getenv := env(map[string]string{"HOME": home})
	dir := filepath.Join(home, ".cache/fspo/models/stories260K")
	want := Paths{filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "tok512.bin")}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			var got Paths
			if got, errs[i] = resolve("", getenv, wd); errs[i] == nil && got != want {
				errs[i] = fmt.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("resolver %d: %v", i, err)
		}
	}
	for _, f := range Known[DefaultModel] {
		path := filepath.Join(dir, f.Name)
		if sum, err := fileSHA256(path); err != nil || sum != f.SHA256 {
			t.Errorf("%s: sha256 %s, %v; want %s", path, sum, err, f.SHA256)
		}
	}
	if got := listDir(t, filepath.Dir(dir)); !slices.Equal(got, []string{"stories260K"}) {
		t.Errorf("cache folder holds %v, want stories260K only (no temporary folders left)", got)
	}

	// Once installed, the folder is found like any other and not rewritten.
	if err := os.WriteFile(want.Tokenizer, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := resolve("stories260K", getenv, wd); err != nil || got != want {
		t.Errorf("second resolve = %+v, %v", got, err)
	}
	if data, _ := os.ReadFile(want.Tokenizer); string(data) != "kept" {
		t.Error("second resolve rewrote the installed tokenizer")
	}

	// Other names are never installed from the built-in copy.
	if _, err := resolve("other", getenv, wd); err == nil || !strings.Contains(err.Error(), "fspo pull other") {
		t.Errorf("resolve other = %v, want not found", err)
	}
	// Without a cache folder the error says what to do.
	_, err := resolve("", env(nil), wd)
	if err == nil || !strings.Contains(err.Error(), "built-in copy needs a cache folder") || !strings.Contains(err.Error(), EnvModels) {
		t.Errorf("resolve without a cache folder = %v", err)
	}
}
