package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPullHubCommand pulls ORG/NAME from a loopback Hub (the hub package's
// own tests cover redirects, resume and errors) and checks the command line:
// flags after the id, the printed snapshot folder, usage errors.
func TestPullHubCommand(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	files := map[string][]byte{"config.json": []byte(`{"model_type":"llama"}`), "x-Q8_0.gguf": bytes.Repeat([]byte("gguf"), 1000), "x-F16.gguf": []byte("f16")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/models/org/tiny/revision/main" {
			var sib []map[string]any
			for n, d := range files {
				h := sha1.New()
				fmt.Fprintf(h, "blob %d\x00%s", len(d), d)
				s := map[string]any{"rfilename": n, "size": len(d), "blobId": hex.EncodeToString(h.Sum(nil))}
				if strings.HasSuffix(n, ".gguf") {
					sum := sha256.Sum256(d)
					s["lfs"] = map[string]any{"size": len(d), "sha256": hex.EncodeToString(sum[:]), "pointerSize": 130}
				}
				sib = append(sib, s)
			}
			json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": sib})
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/org/tiny/resolve/"+commit+"/")
		if d, found := files[name]; ok && found {
			w.Write(d)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	cache := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		return map[string]string{"HF_ENDPOINT": srv.URL, "HF_HUB_CACHE": cache, "HOME": t.TempDir()}[k]
	}}
	if err := Run(context.Background(), env, []string{"pull", "org/tiny", "--file", "*Q8_0.gguf"}); err != nil {
		t.Fatalf("fspo pull: %v\n%s", err, stderr.String())
	}
	snap := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	if !strings.Contains(stdout.String(), "is ready in "+snap) {
		t.Errorf("stdout = %q, want the snapshot folder %s", stdout.String(), snap)
	}
	for n, want := range map[string]bool{"config.json": true, "x-Q8_0.gguf": true, "x-F16.gguf": false} {
		got, err := os.ReadFile(filepath.Join(snap, n))
		if want && !bytes.Equal(got, files[n]) {
			t.Errorf("%s: %v, content differs", n, err)
		} else if !want && err == nil {
			t.Errorf("%s downloaded, not asked for", n)
		}
	}
	// Again with --verify: every file re-hashed, nothing downloaded.
	stdout.Reset()
	if err := Run(context.Background(), env, []string{"pull", "--verify", "--file", "*Q8_0.gguf", "org/tiny"}); err != nil {
		t.Fatalf("fspo pull --verify: %v", err)
	}
	if !strings.Contains(stdout.String(), "2 files, 0 bytes downloaded") {
		t.Errorf("stdout = %q, want nothing downloaded", stdout.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "stories260K", "--file", "*.gguf"}, "--file and --verify are for Hugging Face model ids"},
		{[]string{"pull", "org/tiny", "org/other"}, "one model name expected"},
		{[]string{"pull", "org/tiny@"}, "bad revision"},
	} {
		err := Run(context.Background(), env, c.args)
		if !errors.Is(err, errUsage) || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("fspo %v = %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}
