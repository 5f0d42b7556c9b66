package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pullErr pulls ref and returns the error, failing when there is none.
func pullErr(t *testing.T, c *Client, ref string, patterns ...string) string {
	t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pull(context.Background(), r, patterns)
	if err == nil {
		t.Fatalf("pull %s succeeded, want an error", ref)
	}
	return err.Error()
}

func TestPullGated(t *testing.T) {
	fh := newFakeHub(t)
	fh.add("meta/gated", commitA, hfFolder(), "main")
	fh.repos["meta/gated"].gated = true
	cache := t.TempDir()
	for _, tc := range []struct{ token, want string }{
		{"", "meta/gated is gated or private: set HF_TOKEN"},
		{"hf_wrong", "meta/gated is gated or private and the token in HF_TOKEN has no access"},
	} {
		if got := pullErr(t, fh.client(cache, tc.token), "meta/gated"); !strings.Contains(got, tc.want) {
			t.Errorf("token %q: error %q, want it to say %q", tc.token, got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "models--meta--gated", "snapshots", commitA, "config.json")); err == nil {
		t.Error("a refused file is in the snapshot")
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "models--meta--gated", "blobs"))
	if len(entries) != 0 {
		t.Errorf("refused downloads left %d files in blobs/", len(entries))
	}
	snap := mustPull(t, fh.client(cache, "hf_secret"), "meta/gated")
	if len(snap.Files) != 5 {
		t.Errorf("with the token pulled %d files, want 5", len(snap.Files))
	}
	_, _, _, _, cdnAuth := fh.stats()
	for _, a := range cdnAuth {
		if a != "" {
			t.Errorf("token leaked to the CDN: %q", a)
		}
	}
}

func TestPullNotFound(t *testing.T) {
	fh := newFakeHub(t)
	fh.add("org/tiny", commitA, hfFolder(), "main")
	noConfig := hfFolder()
	delete(noConfig, "config.json")
	fh.add("org/noconfig", commitA, noConfig, "main")
	noWeights := hfFolder()
	delete(noWeights, "model.safetensors")
	fh.add("org/noweights", commitA, noWeights, "main")
	cache := t.TempDir()
	for _, tc := range []struct{ ref, token, want string }{
		{"org/missing", "", "repository org/missing not found on " + fh.hub.URL + " (if it is private, set HF_TOKEN)"},
		{"org/missing", "hf_secret", "repository org/missing not found on " + fh.hub.URL + " (or the token in HF_TOKEN has no access to it)"},
		{"org/tiny@v9", "", `revision "v9" of org/tiny not found`},
		{"org/noconfig", "", "file config.json not found"},
		{"org/noweights", "", "file model.safetensors not found, nor model.safetensors.index.json"},
	} {
		if got := pullErr(t, fh.client(cache, tc.token), tc.ref); !strings.Contains(got, tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.ref, got, tc.want)
		}
	}
	// A file the listing promises but the server does not have.
	fh.mu.Lock()
	delete(fh.repos["org/tiny"].commits[commitA], "tokenizer.json")
	fh.mu.Unlock()
	c := fh.client(cache, "")
	c.Endpoint = fh.hub.URL
	ref, _ := ParseRef("org/tiny")
	commit, files, err := c.info(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	files["tokenizer.json"] = File{Name: "tokenizer.json", Size: 3, Hash: strings.Repeat("1", 40)}
	_, err = c.ensure(context.Background(), Cache{cache}, ref, commit, files["tokenizer.json"])
	if err == nil || !strings.Contains(err.Error(), "file tokenizer.json not found in org/tiny at main") {
		t.Errorf("missing file: error %v, want it named", err)
	}
}

func TestPullSHAMismatch(t *testing.T) {
	fh := newFakeHub(t)
	files := hfFolder()
	fh.add("org/tiny", commitA, files, "main")
	sum := sha256hex(files["model.safetensors"])
	fh.corrupt[sum] = true
	cache := t.TempDir()
	got := pullErr(t, fh.client(cache, ""), "org/tiny")
	for _, want := range []string{"model.safetensors", "sha256 mismatch", "expected " + sum, "got "} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q does not say %q", got, want)
		}
	}
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	for _, p := range []string{sum, sum + ".incomplete"} {
		if _, err := os.Stat(filepath.Join(blobs, p)); err == nil {
			t.Errorf("corrupt download left %s", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(cache, "models--org--tiny", "snapshots", commitA, "model.safetensors")); err == nil {
		t.Error("corrupt file linked into the snapshot")
	}
	if _, err := (Cache{cache}).Find("org/tiny", "main"); err == nil {
		t.Error("Find accepts an unfinished pull")
	}
	delete(fh.corrupt, sum)
	mustPull(t, fh.client(cache, ""), "org/tiny")
	if _, err := (Cache{cache}).Find("org/tiny", "main"); err != nil {
		t.Errorf("after a clean pull: %v", err)
	}
}

// A small file is checked against its git blob sha1 as well.
func TestPullGitSHA1Mismatch(t *testing.T) {
	fh := newFakeHub(t)
	fh.add("org/tiny", commitA, hfFolder(), "main")
	c := fh.client(t.TempDir(), "")
	ref, _ := ParseRef("org/tiny")
	f := File{Name: "config.json", Size: int64(len(hfFolder()["config.json"])), Hash: strings.Repeat("0", 40)}
	_, err := c.fetchBlob(context.Background(), Cache{c.CacheDir}, ref, commitA, f)
	if err == nil || !strings.Contains(err.Error(), "git sha1 mismatch: expected "+f.Hash+", got "+gitSHA1(hfFolder()["config.json"])) {
		t.Errorf("error %v, want a git sha1 mismatch naming both hashes", err)
	}
}
