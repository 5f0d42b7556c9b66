package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
)

// fakeHub is a loopback Hugging Face Hub with the answers a pull relies on
// (as documented for huggingface_hub's client): the revision API with
// ?blobs=true, /resolve/ serving small files itself and redirecting LFS
// files to a second server acting as the CDN, X-Repo-Commit /
// X-Linked-Etag headers, X-Error-Code on errors.
type fakeHub struct {
	hub, cdn *httptest.Server
	token    string // the token gated repositories accept

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	hubAuth  []string // Authorization headers the hub saw
	cdnAuth  []string // Authorization headers the CDN saw
	ranges   []string // Range headers the CDN saw
	resolves int      // /resolve/ requests
	cdnBytes int64    // body bytes the CDN was asked to send

	cutOnce     map[string]bool // blob sha256 → cut the connection mid-body, once
	ignoreRange bool            // the CDN answers 200 with the whole file to ranges
	corrupt     map[string]bool // blob sha256 → served with one byte changed
}

type fakeRepo struct {
	gated   bool
	refs    map[string]string            // branch or tag → commit
	commits map[string]map[string][]byte // commit → file → content
}

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{token: "hf_secret", repos: map[string]*fakeRepo{}, cutOnce: map[string]bool{}, corrupt: map[string]bool{}}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(func() { f.hub.Close(); f.cdn.Close() })
	return f
}

// add stores a commit of repo and points the revisions at it.
func (f *fakeHub) add(repo, commit string, files map[string][]byte, revs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repos[repo]
	if r == nil {
		r = &fakeRepo{refs: map[string]string{}, commits: map[string]map[string][]byte{}}
		f.repos[repo] = r
	}
	r.commits[commit] = files
	for _, rev := range revs {
		r.refs[rev] = commit
	}
}

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".gguf")
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lookup finds repo's files at rev (a ref or a commit).
func (f *fakeHub) lookup(w http.ResponseWriter, repo, rev string) (*fakeRepo, string, map[string][]byte, bool) {
	r := f.repos[repo]
	if r == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusUnauthorized) // the Hub answers 401 to hide private repos
		return nil, "", nil, false
	}
	commit := rev
	if c, ok := r.refs[rev]; ok {
		commit = c
	}
	files, ok := r.commits[commit]
	if !ok {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Invalid rev id", http.StatusNotFound)
		return nil, "", nil, false
	}
	return r, commit, files, true
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hubAuth = append(f.hubAuth, r.Header.Get("Authorization"))
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	switch {
	case len(parts) == 6 && parts[0] == "api" && parts[1] == "models" && parts[4] == "revision" && r.URL.Query().Get("blobs") == "true":
		rev, _ := url.PathUnescape(parts[5])
		f.serveInfo(w, parts[2]+"/"+parts[3], rev)
	case len(parts) >= 5 && parts[2] == "resolve":
		rev, _ := url.PathUnescape(parts[3])
		name, _ := url.PathUnescape(strings.Join(parts[4:], "/"))
		f.serveResolve(w, r, parts[0]+"/"+parts[1], rev, name)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeHub) serveInfo(w http.ResponseWriter, repo, rev string) {
	_, commit, files, ok := f.lookup(w, repo, rev)
	if !ok {
		return
	}
	var sib []map[string]any
	for name, data := range files {
		s := map[string]any{"rfilename": name, "size": len(data), "blobId": gitSHA1(data)}
		if isLFS(name) {
			s["blobId"] = gitSHA1([]byte("pointer " + name))
			s["lfs"] = map[string]any{"size": len(data), "sha256": sha256hex(data), "pointerSize": 134}
		}
		sib = append(sib, s)
	}
	json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": commit, "siblings": sib})
}

func (f *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request, repo, rev, name string) {
	f.resolves++
	repoData, commit, files, ok := f.lookup(w, repo, rev)
	if !ok {
		return
	}
	if repoData.gated && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		status := http.StatusUnauthorized
		if r.Header.Get("Authorization") != "" {
			status = http.StatusForbidden
		}
		http.Error(w, "Access to model "+repo+" is restricted", status)
		return
	}
	data, ok := files[name]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if isLFS(name) {
		sum := sha256hex(data)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
		w.Header().Set("Location", f.cdn.URL+"/blob/"+sum+"?X-Amz-Signature=signed")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitSHA1(data)+`"`)
	http.ServeContent(w, r, path.Base(name), fixedTime, strings.NewReader(string(data)))
}

func (f *fakeHub) blob(sum string) ([]byte, bool) {
	for _, repo := range f.repos {
		for _, files := range repo.commits {
			for name, data := range files {
				if isLFS(name) && sha256hex(data) == sum {
					return data, true
				}
			}
		}
	}
	return nil, false
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.cdnAuth = append(f.cdnAuth, r.Header.Get("Authorization"))
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	sum := strings.TrimPrefix(r.URL.Path, "/blob/")
	data, ok := f.blob(sum)
	cut := f.cutOnce[sum]
	delete(f.cutOnce, sum)
	if f.corrupt[sum] {
		data = append([]byte(nil), data...)
		data[len(data)/3] ^= 0xff
	}
	if f.ignoreRange {
		r.Header.Del("Range")
	}
	f.mu.Unlock()
	if !ok || r.URL.Query().Get("X-Amz-Signature") != "signed" {
		http.NotFound(w, r)
		return
	}
	if cut { // promise the whole body, send half, drop the connection
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		f.count(int64(len(data) / 2))
		panic(http.ErrAbortHandler)
	}
	cw := &countingWriter{ResponseWriter: w, f: f}
	http.ServeContent(cw, r, "blob", fixedTime, strings.NewReader(string(data)))
}

func (f *fakeHub) count(n int64) {
	f.mu.Lock()
	f.cdnBytes += n
	f.mu.Unlock()
}

type countingWriter struct {
	http.ResponseWriter
	f *fakeHub
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.f.count(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

// stats returns a copy of the counters.
func (f *fakeHub) stats() (resolves int, cdnBytes int64, ranges, hubAuth, cdnAuth []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resolves, f.cdnBytes, append([]string(nil), f.ranges...), append([]string(nil), f.hubAuth...), append([]string(nil), f.cdnAuth...)
}

// client pulls from the fake into cache with token.
func (f *fakeHub) client(cache, token string) *Client {
	return &Client{Env: Env{Endpoint: f.hub.URL, Token: token, CacheDir: cache}}
}

// tinyHub serves hfFolder as org/tiny at commitA (main) and gives a cache.
func tinyHub(t *testing.T) (*fakeHub, map[string][]byte, string) {
	fh := newFakeHub(t)
	files := hfFolder()
	fh.add("org/tiny", commitA, files, "main")
	return fh, files, t.TempDir()
}
