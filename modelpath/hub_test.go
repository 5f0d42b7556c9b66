package modelpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --model ORG/NAME[@REVISION] resolves to the snapshot folder that
// `fspo pull ORG/NAME` (or huggingface_hub) left in the Hugging Face cache.
func TestResolveHubID(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--org--tiny")
	snap := filepath.Join(repo, "snapshots", commit)
	// A llama2.c checkpoint stands in for the model: fromDir reads it today.
	touch(t, snap, "config.json", "model.safetensors", "weights.bin", "tok512.bin")
	touch(t, repo, "refs/main")
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"HF_HUB_CACHE": cache, "HOME": t.TempDir()})
	wd := t.TempDir()
	for _, id := range []string{"org/tiny", "org/tiny@main", "org/tiny@" + commit} {
		p, err := resolve(id, getenv, wd)
		if err != nil || p.Checkpoint != filepath.Join(snap, "weights.bin") {
			t.Errorf("resolve(%s) = %+v, %v; want the checkpoint in %s", id, p, err, snap)
		}
	}
	for id, want := range map[string]string{
		"org/other":     "run `fspo pull org/other@main`",
		"org/tiny@v2.0": "revision v2.0 of org/tiny is not in the cache",
	} {
		if _, err := resolve(id, getenv, wd); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("resolve(%s) = %v, want an error saying %q", id, err, want)
		}
	}
}
