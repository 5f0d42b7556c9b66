package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func shardedFolder(shardNames ...string) map[string][]byte {
	files := map[string][]byte{"config.json": []byte(`{"model_type":"qwen2"}`)}
	index := `{"metadata":{"total_size":3},"weight_map":{`
	for i, s := range shardNames {
		if i > 0 {
			index += ","
		}
		index += `"layers.` + string(rune('0'+i)) + `.w":"` + s + `","layers.` + string(rune('0'+i)) + `.b":"` + s + `"`
		files[s] = randomBytes(uint64(10+i), 30_000+i)
	}
	files[indexWeights] = []byte(index + "}}")
	return files
}

func TestPullSharded(t *testing.T) {
	fh := newFakeHub(t)
	files := shardedFolder("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
	files["model-extra.safetensors"] = randomBytes(99, 10) // not in the index: not fetched
	fh.add("org/sharded", commitA, files, "main")
	cache := t.TempDir()
	snap := mustPull(t, fh.client(cache, ""), "org/sharded")
	want := map[string][]byte{}
	for n, d := range files {
		if n != "model-extra.safetensors" {
			want[n] = d
		}
	}
	checkSnapshot(t, snap.Dir, want)
	if dir, err := (Cache{cache}).Find("org/sharded", ""); err != nil || dir != snap.Dir {
		t.Errorf("Find = %s, %v; want %s", dir, err, snap.Dir)
	}
	os.Remove(filepath.Join(snap.Dir, "model-00002-of-00002.safetensors"))
	if _, err := (Cache{cache}).Find("org/sharded", ""); err == nil || !strings.Contains(err.Error(), "shard model-00002-of-00002.safetensors missing") {
		t.Errorf("Find with a shard missing: %v", err)
	}

	broken := shardedFolder("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
	delete(broken, "model-00002-of-00002.safetensors")
	fh.add("org/broken", commitB, broken, "main")
	got := pullErr(t, fh.client(cache, ""), "org/broken")
	if !strings.Contains(got, "lists shard model-00002-of-00002.safetensors, which the repository does not have") {
		t.Errorf("index naming a missing shard: %q", got)
	}
}

func TestPullRevisionResolvesToCommit(t *testing.T) {
	fh := newFakeHub(t)
	old, cur := hfFolder(), hfFolder()
	cur["config.json"] = []byte(`{"model_type":"llama","hidden_size":16}`)
	fh.add("org/tiny", commitA, old, "v1.0")
	fh.add("org/tiny", commitB, cur, "main")
	cache := t.TempDir()
	c := fh.client(cache, "")
	snapOld := mustPull(t, c, "org/tiny@v1.0")
	snapCur := mustPull(t, c, "org/tiny")
	if snapOld.Commit != commitA || snapCur.Commit != commitB {
		t.Fatalf("commits %s, %s; want %s, %s", snapOld.Commit, snapCur.Commit, commitA, commitB)
	}
	repo := filepath.Join(cache, "models--org--tiny")
	for rev, commit := range map[string]string{"v1.0": commitA, "main": commitB} {
		if b, _ := os.ReadFile(filepath.Join(repo, "refs", rev)); string(b) != commit {
			t.Errorf("refs/%s = %q, want %s", rev, b, commit)
		}
		if dir, err := (Cache{cache}).Find("org/tiny", rev); err != nil || filepath.Base(dir) != commit {
			t.Errorf("Find(%s) = %s, %v; want snapshots/%s", rev, dir, err, commit)
		}
	}
	// The weights did not change: one blob serves both snapshots.
	_, cdnBytes, _, _, _ := fh.stats()
	if cdnBytes != int64(len(old["model.safetensors"])) {
		t.Errorf("CDN sent %d bytes for two revisions sharing the weights, want %d", cdnBytes, len(old["model.safetensors"]))
	}
	// Pulling by commit writes no ref.
	mustPull(t, c, "org/tiny@"+commitA)
	if _, err := os.Stat(filepath.Join(repo, "refs", commitA)); err == nil {
		t.Error("a ref named after a commit was written")
	}
	// A pull-request revision becomes refs/refs/pr/1 and is escaped in the API URL.
	fh.add("org/tiny", commitA, old, "refs/pr/1")
	mustPull(t, c, "org/tiny@refs/pr/1")
	if b, _ := os.ReadFile(filepath.Join(repo, "refs", "refs", "pr", "1")); string(b) != commitA {
		t.Errorf("refs/refs/pr/1 = %q", b)
	}
}

// A cache written by huggingface_hub (blobs, relative symlinks, refs/main)
// is used as is: nothing downloaded, nothing copied.
func TestPullFindsExistingCache(t *testing.T) {
	fh, files, cache := tinyHub(t)
	repo := filepath.Join(cache, "models--org--tiny")
	snapDir := filepath.Join(repo, "snapshots", commitA)
	for _, d := range []string{filepath.Join(repo, "blobs"), filepath.Join(repo, "refs"), snapDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"} {
		hash := gitSHA1(files[n])
		if isLFS(n) {
			hash = sha256hex(files[n])
		}
		if err := os.WriteFile(filepath.Join(repo, "blobs", hash), files[n], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../blobs/"+hash, filepath.Join(snapDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commitA), 0o644)
	blob := filepath.Join(repo, "blobs", sha256hex(files["model.safetensors"]))
	before, _ := os.Stat(blob)

	if dir, err := (Cache{cache}).Find("org/tiny", "main"); err != nil || dir != snapDir {
		t.Fatalf("Find = %s, %v; want %s", dir, err, snapDir)
	}
	snap := mustPull(t, fh.client(cache, ""), "org/tiny")
	resolves, cdnBytes, _, _, _ := fh.stats()
	if resolves != 0 || cdnBytes != 0 || snap.Fetched() != 0 || snap.Dir != snapDir {
		t.Errorf("pull over an existing cache: %d file requests, %d CDN bytes, fetched %d, dir %s", resolves, cdnBytes, snap.Fetched(), snap.Dir)
	}
	after, _ := os.Stat(blob)
	if !os.SameFile(before, after) {
		t.Error("the existing blob was replaced")
	}
}

func TestPullGGUFPattern(t *testing.T) {
	fh := newFakeHub(t)
	files := map[string][]byte{
		"tiny-Q8_0.gguf": randomBytes(5, 20_000),
		"tiny-F16.gguf":  randomBytes(6, 40_000),
		"README.md":      []byte("gguf"),
	}
	fh.add("org/tiny-GGUF", commitA, files, "main")
	cache := t.TempDir()
	snap := mustPull(t, fh.client(cache, ""), "org/tiny-GGUF", "*Q8_0.gguf")
	checkSnapshot(t, snap.Dir, map[string][]byte{"tiny-Q8_0.gguf": files["tiny-Q8_0.gguf"]})
	if _, err := (Cache{cache}).Find("org/tiny-GGUF", "main"); err != nil {
		t.Errorf("Find a GGUF snapshot: %v", err)
	}
	for _, tc := range []struct {
		patterns []string
		want     string
	}{
		{nil, "file config.json not found"},
		{[]string{"*Q4_K_M.gguf"}, `--file "*Q4_K_M.gguf" matches no file`},
		{[]string{"[.gguf"}, `--file "[.gguf"`},
	} {
		if got := pullErr(t, fh.client(cache, ""), "org/tiny-GGUF", tc.patterns...); !strings.Contains(got, tc.want) {
			t.Errorf("patterns %q: error %q, want %q", tc.patterns, got, tc.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"HuggingFaceTB/SmolLM2-135M-Instruct", Ref{"HuggingFaceTB/SmolLM2-135M-Instruct", "main"}, true},
		{"Qwen/Qwen3-0.6B@v1.0", Ref{"Qwen/Qwen3-0.6B", "v1.0"}, true},
		{"org/name@refs/pr/1", Ref{"org/name", "refs/pr/1"}, true},
		{"org/name@" + commitA, Ref{"org/name", commitA}, true},
		{"stories260K", Ref{}, false},
		{"org/name/extra", Ref{}, false},
		{"../name", Ref{}, false},
		{"org/..", Ref{}, false},
		{"org/name@", Ref{}, false},
		{"org/name@a/../b", Ref{}, false},
		{"./models/x", Ref{}, false},
		{"/abs/path", Ref{}, false},
		{"org/na me", Ref{}, false},
	} {
		got, err := ParseRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestEnvFrom(t *testing.T) {
	tokenDir := t.TempDir()
	os.WriteFile(filepath.Join(tokenDir, "token"), []byte("hf_file\n"), 0o600)
	for _, tc := range []struct {
		env                    map[string]string
		cache, endpoint, token string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.cache/huggingface/hub", DefaultEndpoint, ""},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub", DefaultEndpoint, ""},
		{map[string]string{"HOME": "/h", "HF_HOME": tokenDir}, tokenDir + "/hub", DefaultEndpoint, "hf_file"},
		{map[string]string{"HF_HOME": tokenDir, "HF_HUB_CACHE": "/c", "HF_TOKEN": "hf_env", "HF_ENDPOINT": "https://mirror.example/"}, "/c", "https://mirror.example", "hf_env"},
	} {
		e, err := EnvFrom(func(k string) string { return tc.env[k] })
		if err != nil || e.CacheDir != filepath.FromSlash(tc.cache) || e.Endpoint != tc.endpoint || e.Token != tc.token {
			t.Errorf("env %v: got %+v, %v; want cache %s endpoint %s token %q", tc.env, e, err, tc.cache, tc.endpoint, tc.token)
		}
	}
	if _, err := EnvFrom(func(string) string { return "" }); err == nil {
		t.Error("no HOME and no HF_* variables: want an error")
	}
}

// A cached blob damaged in place (same size) is trusted by default and
// downloaded again with Verify.
func TestPullVerify(t *testing.T) {
	fh, files, cache := tinyHub(t)
	c := fh.client(cache, "")
	mustPull(t, c, "org/tiny")
	blob := filepath.Join(cache, "models--org--tiny", "blobs", sha256hex(files["model.safetensors"]))
	damaged := append([]byte(nil), files["model.safetensors"]...)
	damaged[7] ^= 1
	if err := os.WriteFile(blob, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if snap := mustPull(t, c, "org/tiny"); snap.Fetched() != 0 {
		t.Errorf("without Verify fetched %d bytes, want 0", snap.Fetched())
	}
	c.Verify = true
	snap := mustPull(t, c, "org/tiny")
	if got := snap.Fetched(); got != int64(len(damaged)) {
		t.Errorf("with Verify fetched %d bytes, want the damaged file's %d", got, len(damaged))
	}
	if b, _ := os.ReadFile(filepath.Join(snap.Dir, "model.safetensors")); string(b) != string(files["model.safetensors"]) {
		t.Error("the damaged file was not replaced")
	}
}
