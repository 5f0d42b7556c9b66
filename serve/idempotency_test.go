package serve_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestIdempotencyKeySurvivesCrash: 8 clients post preferences with an
// Idempotency-Key each; the server is killed with SIGKILL mid-stream and
// restarted on the same store; every request is then sent again with its
// key (as a client that did not see the outcome would). Each key ends up
// stored exactly once — on SQLite and on PostgreSQL — and retries of stored
// ones answer the first row with Idempotent-Replayed.
func TestIdempotencyKeySurvivesCrash(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "idem.db")
			if backend == "postgres" {
				db = pgSchema(t)
			}
			child, base := startChild(t, db)
			client := &http.Client{Timeout: 10 * time.Second}
			u := (&env{t: t, base: base, hc: client})
			_, tok := u.user("idem")

			var mu sync.Mutex
			sent := map[string]bool{} // keys sent, whatever the outcome
			killWhilePosting(t, child, func(key string) bool {
				mu.Lock()
				sent[key] = true
				mu.Unlock()
				_, _, _, err := postJSON(client, base+"/api/preferences", tok, key, map[string]string{"prompt": key, "chosen": "a", "rejected": "b"})
				return err == nil // else the server is gone; this outcome was not seen
			})
			if len(sent) < 10 {
				t.Fatalf("only %d requests sent before the kill; the test proves nothing", len(sent))
			}

			child2, base2 := startChild(t, db)
			defer func() { child2.Process.Kill(); child2.Wait() }()
			replayed := retryWithKeys(t, client, base2, tok, sent)
			code, _, body, _ := postJSON(client, base2+"/api/preferences", tok, "w0-0", map[string]string{"prompt": "another", "chosen": "a", "rejected": "b"})
			if code != http.StatusUnprocessableEntity {
				t.Errorf("key reused for another preference: %d %s, want 422", code, body)
			}
			count := countStoredPrompts(t, client, base2, tok)
			for key := range sent {
				if count[key] != 1 {
					t.Errorf("key %s stored %d times, want exactly once", key, count[key])
				}
			}
			if len(count) != len(sent) {
				t.Errorf("%d distinct preferences stored for %d keys", len(count), len(sent))
			}
			t.Logf("%s: %d keys sent before SIGKILL, %d already stored (replayed on retry), %d stored by the retry", backend, len(sent), replayed, len(sent)-replayed)
			if replayed == 0 {
				t.Error("no retry was a replay: the test did not exercise the key")
			}
		})
	}
}

// retryWithKeys sends every key's preference again to the server at base,
// as a client that did not see the outcome would, and checks each is
// answered 201; it returns how many were replays (Idempotent-Replayed).
func retryWithKeys(t *testing.T, client *http.Client, base, token string, sent map[string]bool) (replayed int) {
	t.Helper()
	for key := range sent {
		code, hdr, body, err := postJSON(client, base+"/api/preferences", token, key, map[string]string{"prompt": key, "chosen": "a", "rejected": "b"})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("retry of %s: %d %s %v", key, code, body, err)
		}
		if hdr.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	return replayed
}

// countStoredPrompts reads all of the user's preferences (token) from the
// server at base, page by page, and counts them by prompt.
func countStoredPrompts(t *testing.T, client *http.Client, base, token string) map[string]int {
	t.Helper()
	count := map[string]int{}
	after := "0"
	for {
		req, _ := http.NewRequest("GET", base+"/api/preferences?limit=1000&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data []struct {
				ID     int64
				Prompt string
			}
			HasMore   bool  `json:"has_more"`
			NextAfter int64 `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Data {
			count[p.Prompt]++
		}
		if !page.HasMore {
			break
		}
		after = strconv.FormatInt(page.NextAfter, 10)
	}
	return count
}
