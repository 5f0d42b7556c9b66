package hub

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var fixedTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// hfFolder is a small Hugging Face model folder; the weights are random.
func hfFolder() map[string][]byte {
	return map[string][]byte{
		"config.json":            []byte(`{"model_type":"llama","hidden_size":8}`),
		"generation_config.json": []byte(`{"eos_token_id":2}`),
		"tokenizer.json":         []byte(`{"model":{"type":"BPE"}}`),
		"tokenizer_config.json":  []byte(`{"add_bos_token":true}`),
		"model.safetensors":      randomBytes(1, 200_000),
		"README.md":              []byte("not needed"),
		"pytorch_model.bin":      []byte("not needed either"),
	}
}

func mustPull(t *testing.T, c *Client, ref string, patterns ...string) *Snapshot {
	t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Pull(context.Background(), r, patterns)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return snap
}

// checkSnapshot checks that dir holds exactly want (as relative symlinks
// into ../../blobs named by the file's hash) and nothing else.
func checkSnapshot(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	var names []string
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Fatalf("snapshot %s holds %v, want %v", dir, got, names)
	}
	for n, data := range want {
		p := filepath.Join(dir, filepath.FromSlash(n))
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatalf("%s is not a symlink: %v", n, err)
		}
		hash := gitSHA1(data)
		if isLFS(n) {
			hash = sha256hex(data)
		}
		up := strings.Repeat("../", strings.Count(n, "/")+2)
		if target != up+"blobs/"+hash {
			t.Errorf("%s -> %s, want %sblobs/%s", n, target, up, hash)
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s: content differs from the served file (err %v)", n, err)
		}
	}
}

func TestPullLayoutRedirectAndToken(t *testing.T) {
	fh, files, cache := tinyHub(t)
	snap := mustPull(t, fh.client(cache, "hf_secret"), "org/tiny")

	if want := filepath.Join(cache, "models--org--tiny", "snapshots", commitA); snap.Dir != want || snap.Commit != commitA {
		t.Fatalf("snapshot %s at %s, want %s at %s", snap.Dir, snap.Commit, want, commitA)
	}
	want := map[string][]byte{}
	for _, n := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"} {
		want[n] = files[n]
	}
	checkSnapshot(t, snap.Dir, want)
	if ref, _ := os.ReadFile(filepath.Join(cache, "models--org--tiny", "refs", "main")); string(ref) != commitA {
		t.Errorf("refs/main = %q, want %s", ref, commitA)
	}
	if got, want := snap.Fetched(), int64(0); got <= want {
		t.Errorf("fetched %d bytes, want the files' sizes", got)
	}
	_, cdnBytes, _, hubAuth, cdnAuth := fh.stats()
	if cdnBytes != int64(len(files["model.safetensors"])) {
		t.Errorf("CDN sent %d bytes, want %d (the LFS file once)", cdnBytes, len(files["model.safetensors"]))
	}
	for _, a := range hubAuth {
		if a != "Bearer hf_secret" {
			t.Errorf("hub request without the token: Authorization %q", a)
		}
	}
	if len(cdnAuth) == 0 {
		t.Fatal("the LFS file was not fetched through the CDN redirect")
	}
	for _, a := range cdnAuth {
		if a != "" {
			t.Errorf("token leaked to the CDN: Authorization %q", a)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "models--org--tiny", "blobs"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".incomplete") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestPullTwiceDownloadsNothing(t *testing.T) {
	fh := newFakeHub(t)
	fh.add("org/tiny", commitA, hfFolder(), "main")
	cache := t.TempDir()
	c := fh.client(cache, "")
	mustPull(t, c, "org/tiny")
	resolves, cdnBytes, _, _, _ := fh.stats()
	snap := mustPull(t, c, "org/tiny")
	resolves2, cdnBytes2, _, _, _ := fh.stats()
	if resolves2 != resolves || cdnBytes2 != cdnBytes || snap.Fetched() != 0 {
		t.Errorf("second pull: %d more file requests, %d more CDN bytes, fetched %d; want none", resolves2-resolves, cdnBytes2-cdnBytes, snap.Fetched())
	}
}

func TestPullResumesAfterCut(t *testing.T) {
	fh := newFakeHub(t)
	files := hfFolder()
	fh.add("org/tiny", commitA, files, "main")
	weights := files["model.safetensors"]
	sum := sha256hex(weights)
	fh.cutOnce[sum] = true
	cache := t.TempDir()
	c := fh.client(cache, "")
	ref, _ := ParseRef("org/tiny")
	if _, err := c.Pull(context.Background(), ref, nil); err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("pull over a cut connection: err %v, want a resumable error", err)
	}
	partial := filepath.Join(cache, "models--org--tiny", "blobs", sum+".incomplete")
	st, err := os.Stat(partial)
	if err != nil || st.Size() != int64(len(weights)/2) {
		t.Fatalf("partial file after the cut: %v, size %v; want %d bytes", err, st, len(weights)/2)
	}
	if _, err := os.Lstat(filepath.Join(cache, "models--org--tiny", "snapshots", commitA, "model.safetensors")); err == nil {
		t.Error("the interrupted file is linked into the snapshot")
	}
	if _, err := os.Stat(filepath.Join(cache, "models--org--tiny", "refs", "main")); err == nil {
		t.Error("refs/main written for an unfinished pull")
	}
	_, before, _, _, _ := fh.stats()
	snap := mustPull(t, c, "org/tiny")
	_, after, ranges, _, _ := fh.stats()
	if last := ranges[len(ranges)-1]; last != "bytes=100000-" {
		t.Errorf("resumed with Range %q, want bytes=100000-", last)
	}
	if after-before != int64(len(weights)/2) {
		t.Errorf("resume transferred %d bytes, want the missing %d", after-before, len(weights)/2)
	}
	checkSnapshot(t, snap.Dir, map[string][]byte{"config.json": files["config.json"], "generation_config.json": files["generation_config.json"],
		"tokenizer.json": files["tokenizer.json"], "tokenizer_config.json": files["tokenizer_config.json"], "model.safetensors": weights})
}

func TestPullServerIgnoresRange(t *testing.T) {
	fh := newFakeHub(t)
	files := map[string][]byte{"config.json": []byte(`{}`), "model.safetensors": randomBytes(2, 50_000)}
	fh.add("org/tiny", commitA, files, "main")
	sum := sha256hex(files["model.safetensors"])
	fh.cutOnce[sum] = true
	fh.ignoreRange = true
	cache := t.TempDir()
	c := fh.client(cache, "")
	ref, _ := ParseRef("org/tiny")
	if _, err := c.Pull(context.Background(), ref, nil); err == nil {
		t.Fatal("pull over a cut connection succeeded")
	}
	snap := mustPull(t, c, "org/tiny")
	checkSnapshot(t, snap.Dir, files)
	if got := snap.Files[1].Fetched; got != 50_000 {
		t.Errorf("after an ignored range fetched %d bytes, want the whole 50000 again", got)
	}
}

func TestPullCancelLeavesResumable(t *testing.T) {
	fh := newFakeHub(t)
	files := map[string][]byte{"config.json": []byte(`{}`), "model.safetensors": randomBytes(3, 3<<20)}
	fh.add("org/tiny", commitA, files, "main")
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{onAdd: func(name string) {
		if name == "model.safetensors" {
			cancel()
		}
	}}
	c := fh.client(cache, "")
	c.Progress = rec
	ref, _ := ParseRef("org/tiny")
	_, err := c.Pull(ctx, ref, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: err %v, want context.Canceled", err)
	}
	partial := filepath.Join(cache, "models--org--tiny", "blobs", sha256hex(files["model.safetensors"])+".incomplete")
	st, err := os.Stat(partial)
	if err != nil || st.Size() == 0 || st.Size() >= 3<<20 {
		t.Fatalf("after cancel: %v %v; want a partial file", err, st)
	}
	c.Progress = &recorder{}
	snap := mustPull(t, c, "org/tiny")
	checkSnapshot(t, snap.Dir, files)
	if got := snap.Files[1].Fetched; got != 3<<20-st.Size() {
		t.Errorf("resume fetched %d bytes, want %d", got, 3<<20-st.Size())
	}
	if rec.started["model.safetensors"] == 0 || rec.done["model.safetensors"] != 1 || rec.errs != 1 {
		t.Errorf("progress: started %v done %v errors %d", rec.started, rec.done, rec.errs)
	}
}

// recorder is a Progress that counts what it hears.
type recorder struct {
	onAdd   func(name string)
	started map[string]int
	done    map[string]int
	added   int64
	errs    int
}

func (r *recorder) Start(name string, size, have int64) {
	if r.started == nil {
		r.started, r.done = map[string]int{}, map[string]int{}
	}
	r.started[name]++
}

func (r *recorder) Add(name string, n int64) {
	r.added += n
	if r.onAdd != nil {
		r.onAdd(name)
	}
}

func (r *recorder) Done(name string, err error) {
	r.done[name]++
	if err != nil {
		r.errs++
	}
}

// A partial file the server cannot resume (416) is discarded; the next pull
// starts over and succeeds.
func TestPullRangeNotSatisfiable(t *testing.T) {
	fh, files, cache := tinyHub(t)
	sum := sha256hex(files["model.safetensors"])
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	os.MkdirAll(blobs, 0o755)
	// A partial file as long as the blob but with wrong bytes: the range
	// bytes=N- with N = size is past the end.
	bad := make([]byte, len(files["model.safetensors"])-1)
	os.WriteFile(filepath.Join(blobs, sum+".incomplete"), append(bad, 0), 0o644)
	c := fh.client(cache, "")
	// have == size: no request, the hash check fails and the partial goes.
	if got := pullErr(t, c, "org/tiny"); !strings.Contains(got, "sha256 mismatch") {
		t.Errorf("full-length wrong partial: %q", got)
	}
	os.WriteFile(filepath.Join(blobs, sum+".incomplete"), bad, 0o644)
	orig := files["model.safetensors"] // files is the map the fake serves
	fh.mu.Lock()
	fh.repos["org/tiny"].commits[commitA]["model.safetensors"] = orig[:len(bad)-10] // the server's file shrank
	fh.mu.Unlock()
	ref, _ := ParseRef("org/tiny")
	commit, list, err := c.info(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	f := list["model.safetensors"]
	f.Size, f.Hash = int64(len(orig)), sum // the listing still promises the old file
	_, err = c.fetchBlob(context.Background(), Cache{cache}, ref, commit, f)
	if err == nil || !strings.Contains(err.Error(), "refused to resume at byte") {
		t.Errorf("416: %v", err)
	}
	if _, err := os.Stat(filepath.Join(blobs, sum+".incomplete")); err == nil {
		t.Error("an unresumable partial file was kept")
	}
}

// While another process holds huggingface_hub's lock on a blob, a pull waits
// for it (here until its context ends) instead of writing the same partial file.
func TestPullWaitsForBlobLock(t *testing.T) {
	fh, files, cache := tinyHub(t)
	unlock, err := Cache{cache}.lockBlob(context.Background(), "org/tiny", sha256hex(files["model.safetensors"]))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ref, _ := ParseRef("org/tiny")
	_, err = fh.client(cache, "").Pull(ctx, ref, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another download of this file is running") {
		t.Errorf("pull while the blob is locked: %v", err)
	}
	if _, cdnBytes, _, _, _ := fh.stats(); cdnBytes != 0 {
		t.Errorf("the CDN sent %d bytes of a locked blob", cdnBytes)
	}
	unlock()
	mustPull(t, fh.client(cache, ""), "org/tiny")
}
