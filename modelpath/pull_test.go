package modelpath

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// realFiles returns the stories260K files as the download server serves
// them: the built-in copies.
func realFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range Known["stories260K"] {
		data, err := fs.ReadFile(builtin, f.Name)
		if err != nil {
			t.Fatalf("built-in %s: %v", f.Name, err)
		}
		files["/stories260K/"+f.Name] = data
	}
	return files
}

// server serves files by URL path and counts requests; corrupt, when set,
// alters a body before it is sent.
func server(t *testing.T, files map[string][]byte, corrupt func([]byte) []byte) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if corrupt != nil {
			data = corrupt(bytes.Clone(data))
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// listDir names the files in dir, temporary ones included.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPull(t *testing.T) {
	files := realFiles(t)
	srv, hits := server(t, files, nil)
	dest := t.TempDir()
	var progress bytes.Buffer
	opt := PullOptions{BaseURL: srv.URL, Client: srv.Client(), Progress: &progress}
	if err := Pull(context.Background(), "stories260K", dest, opt); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dest, "stories260K")
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(dest, path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: downloaded bytes differ", path)
		}
	}
	if got := listDir(t, dir); len(got) != 2 {
		t.Errorf("files in %s: %v, want the two model files only", dir, got)
	}
	for _, want := range []string{"100% (1056540 of 1056540 bytes)", "saved", "tok512.bin"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress does not mention %q:\n%s", want, progress.String())
		}
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
	// The folder now resolves as a model.
	p, err := resolve("stories260K", env(map[string]string{EnvModels: dest, "HOME": t.TempDir()}), t.TempDir())
	if err != nil || p.Tokenizer != filepath.Join(dir, "tok512.bin") {
		t.Errorf("resolve after pull = %+v, %v", p, err)
	}

	// A second pull finds both files intact and downloads nothing.
	progress.Reset()
	if err := Pull(context.Background(), "stories260K", dest, opt); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("second pull made %d requests, want none", got-2)
	}
	if !strings.Contains(progress.String(), "present, sha256 ok") {
		t.Errorf("second pull progress:\n%s", progress.String())
	}

	// A damaged file is downloaded again.
	tokPath := filepath.Join(dir, "tok512.bin")
	if err := os.WriteFile(tokPath, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Pull(context.Background(), "stories260K", dest, opt); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(tokPath); !bytes.Equal(got, files["/stories260K/tok512.bin"]) {
		t.Error("damaged tok512.bin was not replaced")
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("repair made %d requests, want 1", got-2)
	}
}

func TestPullErrors(t *testing.T) {
	files := realFiles(t)
	flip := func(b []byte) []byte { b[len(b)/2] ^= 1; return b }
	short := func(b []byte) []byte { return b[:len(b)-1] }
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	cases := []struct {
		name    string
		model   string
		baseURL func(t *testing.T) string
		want    []string
	}{
		{"sha mismatch", "stories260K", func(t *testing.T) string { s, _ := server(t, files, flip); return s.URL }, []string{"sha256", "want b0a507e7"}},
		{"short body", "stories260K", func(t *testing.T) string { s, _ := server(t, files, short); return s.URL }, []string{"got 1056539 bytes, want 1056540"}},
		{"404", "stories260K", func(t *testing.T) string { s, _ := server(t, nil, nil); return s.URL }, []string{"404 Not Found", "copy the files by hand"}},
		{"connection refused", "stories260K", func(t *testing.T) string { return refusedURL }, []string{"cannot reach " + refusedURL, "refused", "copy the files by hand into"}},
		{"unknown model", "gpt5", func(t *testing.T) string { return "http://127.0.0.1:1" }, []string{"unknown model", "stories260K"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			err := Pull(context.Background(), c.model, dest, PullOptions{BaseURL: c.baseURL(t)})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got := listDir(t, filepath.Join(dest, c.model)); len(got) != 0 {
				t.Errorf("files left behind: %v", got)
			}
		})
	}
}

func TestPullCanceled(t *testing.T) {
	files := realFiles(t)
	srv, _ := server(t, files, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Pull(ctx, "stories260K", t.TempDir(), PullOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Pull with a canceled context = %v", err)
	}
}
