package hub

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Redirects within the endpoint's origin (a renamed repository) keep the
// token; a redirect to another host (the CDN) drops it, and the first
// answer's headers are the ones reported.
func TestGetRedirects(t *testing.T) {
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, "cdn "+r.Header.Get("Authorization")+" "+r.Header.Get("Range"))
		io.WriteString(w, "body")
	}))
	defer other.Close()
	hubSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Range"))
		switch r.URL.Path {
		case "/old/name/resolve/main/f":
			w.Header().Set("X-Repo-Commit", "first")
			http.Redirect(w, r, "/org/name/resolve/main/f", http.StatusTemporaryRedirect)
		case "/org/name/resolve/main/f":
			http.Redirect(w, r, other.URL+"/blob?sig=1", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer hubSrv.Close()
	c := &Client{Env: Env{Endpoint: hubSrv.URL, Token: "hf_secret"}}
	resp, first, err := c.get(context.Background(), hubSrv.URL+"/old/name/resolve/main/f", 7)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := []string{"/old/name/resolve/main/f Bearer hf_secret bytes=7-", "/org/name/resolve/main/f Bearer hf_secret bytes=7-", "cdn  bytes=7-"}
	if strings.Join(seen, "|") != strings.Join(want, "|") || string(body) != "body" || first.Get("X-Repo-Commit") != "first" {
		t.Errorf("requests %q, body %q, first X-Repo-Commit %q; want %q, body, first", seen, body, first.Get("X-Repo-Commit"), want)
	}
	if _, _, err := c.get(context.Background(), hubSrv.URL+"/loop", 0); err == nil || !strings.Contains(err.Error(), "no usable redirect") {
		t.Errorf("redirect loop: %v", err)
	}
}

// A network failure is wrapped with the URL and keeps its cause.
func TestPullNetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := &Client{Env: Env{Endpoint: "http://" + addr, CacheDir: t.TempDir()}}
	ref, _ := ParseRef("org/tiny")
	_, err = c.Pull(context.Background(), ref, nil)
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || !strings.Contains(err.Error(), "pull org/tiny@main: GET http://"+addr+"/api/models/org/tiny/revision/main") {
		t.Errorf("error %v, want a wrapped *net.OpError naming the URL", err)
	}
}
