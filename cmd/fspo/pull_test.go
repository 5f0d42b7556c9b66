package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/internal/testenv"
	"fspo/modelpath"
)

func TestPullCommand(t *testing.T) {
	p := testenv.Model(t)
	files := map[string]string{
		"/stories260K/stories260K.bin": p.Checkpoint,
		"/stories260K/tok512.bin":      p.Tokenizer,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, path)
	}))
	defer srv.Close()
	old := pullBaseURL
	pullBaseURL = srv.URL
	defer func() { pullBaseURL = old }()

	models := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		if k == modelpath.EnvModels {
			return models
		}
		return ""
	}}
	if err := Run(context.Background(), env, []string{"pull", "stories260K"}); err != nil {
		t.Fatalf("fspo pull: %v\n%s", err, stderr.String())
	}
	for _, name := range []string{"stories260K.bin", "tok512.bin"} {
		got, err := os.ReadFile(filepath.Join(models, "stories260K", name))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(files["/stories260K/"+name])
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the served file", name)
		}
	}
	if !strings.Contains(stdout.String(), "stories260K is ready in "+filepath.Join(models, "stories260K")) {
		t.Errorf("stdout = %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "sha256 ok") {
		t.Errorf("stderr = %q, want progress lines", stderr.String())
	}

	// --dir elsewhere works and says how to use the result.
	other := t.TempDir()
	stdout.Reset()
	if err := Run(context.Background(), env, []string{"pull", "--dir", other, "stories260K"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "stories260K", "tok512.bin")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(stdout.String(), "--model "+filepath.Join(other, "stories260K")) {
		t.Errorf("stdout = %q, want a --model hint", stdout.String())
	}

	usage := []struct {
		args []string
		want string
	}{
		{[]string{"pull"}, "give a model name"},
		{[]string{"pull", "nosuch"}, `unknown model "nosuch"`},
		{[]string{"pull", "stories260K", "extra"}, "one model name expected"},
		{[]string{"pull", "--bogus", "stories260K"}, "bogus"},
	}
	for _, c := range usage {
		err := Run(context.Background(), env, c.args)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fspo %v = %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
}
