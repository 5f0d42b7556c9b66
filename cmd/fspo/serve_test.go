package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testAdmin = "serve-cli-admin-token-0123"

func serveEnv(stdout io.Writer) *Env {
	return &Env{Stdout: stdout, Stderr: io.Discard, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "FSPO_ADMIN_TOKEN" {
			return testAdmin
		}
		return os.Getenv(k)
	}}
}

func TestServeUsageErrors(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "x.db")
	for _, tc := range []struct {
		args []string
		env  *Env
		want string
	}{
		{[]string{"serve", "--db", db}, &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "short" }}, "FSPO_ADMIN_TOKEN"},
		{[]string{"serve"}, serveEnv(io.Discard), "--db is required"},
		{[]string{"serve", "--db", "mysql://x"}, serveEnv(io.Discard), "want sqlite:PATH or postgres://"},
		{[]string{"serve", "--db", db, "--variant", "oracle"}, serveEnv(io.Discard), "--variant"},
		{[]string{"serve", "--db", db, "--engine", "nope"}, serveEnv(io.Discard), "NAME=PATH"},
		{[]string{"serve", "--db", db, "--strategy", "best"}, serveEnv(io.Discard), `unknown shot strategy "best"`},
	} {
		err := Run(context.Background(), tc.env, tc.args)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fspo %v: error %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// TestServeCommand starts `fspo serve` on a free port with stories260K and
// SQLite, makes a user, a preference and a completion, then stops it.
func TestServeCommand(t *testing.T) {
	sharedModel(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, serveEnv(pw), []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "s.db"), "--raw-base"})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("no output from fspo serve: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	_, rest, ok := strings.Cut(sc.Text(), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line %q does not say where it listens", sc.Text())
	}
	base := strings.Fields(rest)[0]

	call := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, u := call("POST", "/api/users", testAdmin, `{"name":"cli"}`)
	if code != 201 {
		t.Fatalf("create user: %d %v", code, u)
	}
	tok := u["token"].(string)
	if code, out := call("POST", "/api/preferences", tok, `{"prompt":"Once upon a time,","chosen":"a happy dog","rejected":"a sad cat"}`); code != 201 {
		t.Fatalf("add preference: %d %v", code, out)
	}
	code, out := call("POST", "/v1/completions", tok, `{"prompt":"One day,","max_tokens":20,"seed":5}`)
	if code != 200 || out["fspo"].(map[string]any)["shots"] != 1.0 {
		t.Errorf("completion: %d %v", code, out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fspo serve after shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fspo serve did not stop after cancellation")
	}
}
