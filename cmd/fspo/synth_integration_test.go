package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/serve"
	"fspo/store/sqlite"
	"fspo/tokenizer"
)

const integAdminToken = "integration-admin-token-0123456789"

// storiesServer starts the real server on loopback: stories260K (batched,
// plain template) over a SQLite store in a temp dir. It returns the base URL
// and a new user's token. Skips when stories260K is not on this machine.
func storiesServer(t *testing.T) (string, string) {
	t.Helper()
	sharedModel(t)
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: os.Getenv}
	m, tok, err := loadModel(env, "")
	if err != nil {
		t.Fatal(err)
	}
	eng := &serve.ModelEngine{Label: "stories260K", Model: m, Codec: fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: episode.Plain, Layout: episode.Compact},
		Batcher: serve.NewBatcher(m, 16)}
	bctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Batcher.Run(bctx); close(done) }()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "serve.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := serve.New(serve.Config{Store: st, Engine: eng, AdminToken: integAdminToken, RateLimit: rate.Inf, MaxTokens: 128})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		st.Close()
	})
	req, _ := http.NewRequest("POST", srv.URL+"/api/users", strings.NewReader(`{"name":"synth"}`))
	req.Header.Set("Authorization", "Bearer "+integAdminToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != http.StatusCreated || u.Token == "" {
		t.Fatalf("create user: status %d, %v", resp.StatusCode, err)
	}
	return srv.URL, u.Token
}

// synthReport is the part of report.json this test reads.
type synthReport struct {
	Users   int `json:"users"`
	Records int `json:"records"`
	Calls   struct {
		Calls       int `json:"calls"`
		FailedCalls int `json:"failed_calls"`
		Failures    []struct {
			Stage, Item, Kind, Error string
		} `json:"failures"`
		Skipped []struct {
			Stage, Item, Kind, Error string
		} `json:"skipped"`
	} `json:"calls"`
}

// TestSynthRecipeAgainstServer runs `fspo synth --recipe reviews` end to end
// against the project's own server with stories260K. The story model writes
// stories, not JSON, so the structured viewpoint step fails schema
// validation; with 4 responses per question pairs form and the label prompts
// (two reviews each) exceed the model's 512 positions, a 400. The run must
// finish and record every such call in its report with stage and kind, and
// the items that needed them as skipped: never drop them silently.
func TestSynthRecipeAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the synthesis pipeline against the real model")
	}
	base, token := storiesServer(t)
	cases := []struct {
		responses  string
		wantFailed map[string]bool // stage/kind that must appear among the failures
	}{
		{"2", map[string]bool{"view/schema": true}},
		{"4", map[string]bool{"view/schema": true, "label/client": true}},
	}
	for _, tc := range cases {
		t.Run("responses="+tc.responses, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
				if k == "FSPO_SERVER_TOKEN" {
					return token
				}
				return ""
			}}
			err := Run(t.Context(), env, []string{"synth", "--recipe", "reviews", "--endpoint", base + "/v1", "--model", "stories260K",
				"--api-key-env", "FSPO_SERVER_TOKEN", "--users", "4", "--questions", "2", "--responses", tc.responses, "--out", out})
			if err != nil {
				t.Fatalf("fspo synth: %v\n%s", err, stderr.String())
			}
			data, err := os.ReadFile(filepath.Join(out, "report.json"))
			if err != nil {
				t.Fatal(err)
			}
			var rep synthReport
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatalf("report.json: %v", err)
			}
			got := map[string]int{}
			for _, f := range rep.Calls.Failures {
				got[f.Stage+"/"+f.Kind]++
				if f.Item == "" || f.Error == "" {
					t.Errorf("failure without item or error: %+v", f)
				}
			}
			t.Logf("%s\nreport: %d users, %d records, %d calls, failed %v, %d items skipped", strings.TrimSpace(stdout.String()),
				rep.Users, rep.Records, rep.Calls.Calls, got, len(rep.Calls.Skipped))
			if len(rep.Calls.Failures) > 0 {
				t.Logf("first failure: %+v", rep.Calls.Failures[0])
			}
			if rep.Calls.FailedCalls == 0 || rep.Calls.FailedCalls != len(rep.Calls.Failures) {
				t.Errorf("failed_calls %d with %d listed; want the failed calls counted and listed", rep.Calls.FailedCalls, len(rep.Calls.Failures))
			}
			for k := range tc.wantFailed {
				if got[k] == 0 {
					t.Errorf("no %s failure recorded; got %v", k, got)
				}
			}
			if len(rep.Calls.Skipped) == 0 {
				t.Errorf("no skipped items recorded, though every view call failed")
			}
			if want := fmt.Sprintf("%d calls finally failed", rep.Calls.FailedCalls); !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout does not say %q:\n%s", want, stdout.String())
			}
			md, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil || !strings.Contains(string(md), "## Failed calls") {
				t.Errorf("report.md lacks the failed-calls table (%v)", err)
			}
		})
	}
}
