package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"fspo/serve"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("GET", "/healthz", "", nil)
	if got := decode[map[string]string](t, body); code != 200 || got["status"] != "ok" || got["engine"] != "fake" {
		t.Errorf("GET /healthz = %d %s, want 200 status ok engine fake", code, body)
	}
}

func TestCreateUserNeedsAdminToken(t *testing.T) {
	e := newEnv(t, nil)
	_, userToken := e.user("alice")
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"wrong token", "admin-token-0123456789abcdeX", 401},
		{"admin token prefix", adminToken[:10], 401},
		{"user token", userToken, 401},
		{"admin token", adminToken, 201},
	} {
		code, body, _ := e.do("POST", "/api/users", tc.token, map[string]string{"name": "x"})
		if code != tc.want {
			t.Errorf("%s: POST /api/users = %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	// The store keeps only the token's hash.
	if _, err := e.store.UserByToken(t.Context(), []byte(userToken)); err == nil {
		t.Errorf("the raw token finds a user; tokens must be stored hashed")
	}
	if _, err := e.store.UserByToken(t.Context(), serve.HashToken(userToken)); err != nil {
		t.Errorf("the token's hash finds no user: %v", err)
	}
}

func TestPreferencesCRUD(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	id1 := e.pref(tok, "q1", "good <b>1</b>", "bad 1")
	id2 := e.pref(tok, "q2", "good 2", "bad 2")

	code, body, _ := e.do("GET", "/api/preferences", tok, nil)
	list := decode[struct {
		Data []struct {
			ID                               int64
			Prompt, Chosen, Rejected, Source string
		}
	}](t, body)
	if code != 200 || len(list.Data) != 2 || list.Data[0].ID != id1 || list.Data[0].Chosen != "good <b>1</b>" || list.Data[1].Source != "api" {
		t.Fatalf("GET /api/preferences = %d %s", code, body)
	}
	if code, body, _ := e.do("DELETE", fmt.Sprintf("/api/preferences/%d", id1), tok, nil); code != 204 {
		t.Errorf("DELETE own = %d %s, want 204", code, body)
	}
	if code, _, _ := e.do("DELETE", fmt.Sprintf("/api/preferences/%d", id1), tok, nil); code != 404 {
		t.Errorf("DELETE again = %d, want 404", code)
	}
	if code, _, _ := e.do("DELETE", "/api/preferences/abc", tok, nil); code != 400 {
		t.Errorf("DELETE bad id = %d, want 400", code)
	}
	_, body, _ = e.do("GET", "/api/preferences", tok, nil)
	if !strings.Contains(string(body), fmt.Sprintf(`"id":%d`, id2)) || strings.Contains(string(body), fmt.Sprintf(`"id":%d,`, id1)) {
		t.Errorf("after delete: %s", body)
	}
}

// TestUsersSeeOnlyTheirOwnData tries another user's ids and tokens everywhere.
func TestUsersSeeOnlyTheirOwnData(t *testing.T) {
	e := newEnv(t, nil)
	_, alice := e.user("alice")
	_, bob := e.user("bob")
	aliceID := e.pref(alice, "alice's question", "alice secret chosen", "alice rejected")
	e.pref(bob, "bob's question", "bob chosen", "bob rejected")

	if code, _, _ := e.do("DELETE", fmt.Sprintf("/api/preferences/%d", aliceID), bob, nil); code != 404 {
		t.Errorf("bob deleting alice's preference = %d, want 404", code)
	}
	_, body, _ := e.do("GET", "/api/preferences", bob, nil)
	if strings.Contains(string(body), "alice") {
		t.Errorf("bob's list shows alice's data: %s", body)
	}
	// Bob's completions and description must not use alice's shots.
	_, body, _ = e.do("POST", "/v1/chat/completions", bob, map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}})
	if strings.Contains(string(body), "alice") || !strings.Contains(string(body), "bob chosen") {
		t.Errorf("bob's completion: %s", body)
	}
	_, body, _ = e.do("GET", "/api/me/description", bob, nil)
	if d := decode[map[string]any](t, body); d["description"] != "likes: bob chosen" || d["shots"] != 1.0 {
		t.Errorf("bob's description = %s", body)
	}
	// Alice's data is intact.
	_, body, _ = e.do("GET", "/api/preferences", alice, nil)
	if !strings.Contains(string(body), "alice secret chosen") {
		t.Errorf("alice lost her preference: %s", body)
	}
	for _, tok := range []string{"", "fspo_notatoken", alice + "x", strings.ToUpper(alice), adminToken} {
		if code, _, hdr := e.do("GET", "/api/preferences", tok, nil); code != 401 || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("GET /api/preferences with token %q = %d, want 401 with WWW-Authenticate", tok, code)
		}
	}
}

func TestInputLimits(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.MaxBodyBytes = 2000; c.MaxTextChars = 100; c.MaxTokens = 64 })
	_, tok := e.user("alice")
	long := strings.Repeat("é", 101)
	chat := func(extra string) string {
		return `{"messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	for _, tc := range []struct {
		name, path, body string
		want             int
		msg              string
	}{
		{"body too large", "/api/preferences", `{"prompt":"` + strings.Repeat("x", 3000) + `"}`, 413, "larger than the limit of 2000 bytes"},
		{"prompt too long", "/api/preferences", `{"prompt":"` + long + `","chosen":"a","rejected":"b"}`, 400, `"prompt" has 101 characters; the limit is 100`},
		{"empty chosen", "/api/preferences", `{"prompt":"q","chosen":"","rejected":"b"}`, 400, `"chosen" is empty`},
		{"same answers", "/api/preferences", `{"prompt":"q","chosen":"a","rejected":"a"}`, 400, "same text"},
		{"unknown field", "/api/preferences", `{"prompt":"q","chosen":"a","rejected":"b","x":1}`, 400, "unknown field"},
		{"bad json", "/api/preferences", `{"prompt":`, 400, "bad JSON"},
		{"empty body", "/api/preferences", ``, 400, "empty request body"},
		{"trailing data", "/api/preferences", `{"prompt":"q","chosen":"a","rejected":"b"} {}`, 400, "trailing data"},
		{"question too long", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, `"question" has 101 characters`},
		{"no user message", "/v1/chat/completions", `{"messages":[{"role":"system","content":"x"}]}`, 400, `no message with role "user"`},
		{"max_tokens too big", "/v1/chat/completions", chat(`,"max_tokens":65`), 400, "max_tokens 65 is outside 1..64"},
		{"temperature", "/v1/chat/completions", chat(`,"temperature":3`), 400, "temperature 3"},
		{"n", "/v1/chat/completions", chat(`,"n":2`), 400, `"n": 1`},
		{"strategy", "/v1/chat/completions", chat(`,"shot_strategy":"best"`), 400, `unknown shot_strategy "best"`},
		{"model", "/v1/chat/completions", chat(`,"model":"gpt-9"`), 400, `unknown model "gpt-9"`},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "image_url"},
		{"prompt list", "/v1/completions", `{"prompt":["a","b"]}`, 400, "exactly one string"},
	} {
		code, body, _ := e.do("POST", tc.path, tok, tc.body)
		var got struct {
			Error struct{ Message, Type string }
		}
		decodeErr := json.Unmarshal(body, &got)
		if code != tc.want || decodeErr != nil || !strings.Contains(got.Error.Message, tc.msg) {
			t.Errorf("%s: %d %s, want %d with a JSON error containing %q", tc.name, code, body, tc.want, tc.msg)
		}
	}
}

func TestMaxPreferences(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.MaxPreferences = 2 })
	_, tok := e.user("alice")
	e.pref(tok, "q", "a", "b")
	e.pref(tok, "q", "a", "b")
	if code, body, _ := e.do("POST", "/api/preferences", tok, map[string]string{"prompt": "q", "chosen": "a", "rejected": "b"}); code != 403 || !strings.Contains(string(body), "limit") {
		t.Errorf("third preference = %d %s, want 403 limit", code, body)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock = func() time.Time { return now }
	e := newEnv(t, func(c *serve.Config) { c.RateLimit = rate.Every(10 * time.Second); c.RateBurst = 3; c.Now = clock })
	_, alice := e.user("alice")
	_, bob := e.user("bob")
	for i := range 3 {
		if code, _, _ := e.do("GET", "/api/preferences", alice, nil); code != 200 {
			t.Fatalf("request %d = %d, want 200 within the burst", i, code)
		}
	}
	code, body, hdr := e.do("GET", "/api/preferences", alice, nil)
	retry, err := strconv.Atoi(hdr.Get("Retry-After"))
	if code != 429 || err != nil || retry < 1 || retry > 10 || !strings.Contains(string(body), "rate limit") {
		t.Errorf("4th request = %d %s Retry-After %q, want 429 with Retry-After in 1..10", code, body, hdr.Get("Retry-After"))
	}
	if code, _, _ := e.do("GET", "/api/preferences", bob, nil); code != 200 {
		t.Errorf("bob is limited by alice's requests: %d", code)
	}
}

// TestTokensNeverLogged runs requests that carry tokens (valid, invalid, in
// headers and form bodies) and checks that no token reaches the log.
func TestTokensNeverLogged(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	e.pref(tok, "q", "a", "b")
	e.do("GET", "/api/preferences", tok, nil)
	e.do("GET", "/api/preferences", tok+"wrong", nil)
	e.do("POST", "/v1/chat/completions", tok, map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}, "stream": true})
	e.do("POST", "/api/users", "bad-admin", nil)
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/signin", map[string][]string{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	logs := e.logs.String()
	if !strings.Contains(logs, "/api/preferences") || !strings.Contains(logs, "status=401") {
		t.Fatalf("the log misses the requests: %s", logs)
	}
	for _, secret := range []string{tok, adminToken, tok[5:25], "bad-admin"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a token fragment %q:\n%s", secret, logs)
		}
	}
}

// TestTextFieldsValidatedOnBothStores: text that PostgreSQL would refuse
// (NUL) or that JSON decoding would silently alter (invalid UTF-8), and
// other C0 control characters, are refused with 400 naming the field, the
// same on SQLite and PostgreSQL, and nothing is stored; tab, newline and
// carriage return pass.
func TestTextFieldsValidatedOnBothStores(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		_, tok := e.user("alice")
		for _, tc := range []struct {
			name, path, token, body, msg string
		}{
			{"NUL in prompt", "/api/preferences", tok, `{"prompt":"nul\u0000byte","chosen":"a","rejected":"b"}`, `field "prompt" contains a NUL`},
			{"raw invalid UTF-8", "/api/preferences", tok, "{\"prompt\":\"q\",\"chosen\":\"caf\xe9\",\"rejected\":\"b\"}", `field "chosen" is not valid UTF-8`},
			{"escape in rejected", "/api/preferences", tok, `{"prompt":"q","chosen":"a","rejected":"\u001b[31mred"}`, `field "rejected" contains the control character U+001B`},
			{"control in user name", "/api/users", adminToken, `{"name":"bell\u0007"}`, `field "name" contains the control character U+0007`},
			{"NUL in study question", "/api/studies", adminToken, `{"name":"s","questions":["fine","x\u0000"],"pairs":1,"systems":["fspo","base"]}`, `field "questions[1]" contains a NUL`},
			{"NUL in chat question", "/v1/chat/completions", tok, `{"messages":[{"role":"user","content":"hi\u0000"}]}`, `field "question" contains a NUL`},
		} {
			code, body, _ := e.do("POST", tc.path, tc.token, tc.body)
			var got struct{ Error struct{ Message string } }
			if code != http.StatusBadRequest || json.Unmarshal(body, &got) != nil || !strings.Contains(got.Error.Message, tc.msg) {
				t.Errorf("%s: %d %s, want 400 with %q", tc.name, code, body, tc.msg)
			}
		}
		code, body, _ := e.do("GET", "/api/preferences", tok, nil)
		if code != http.StatusOK || strings.Contains(string(body), `"prompt"`) {
			t.Errorf("after refused writes: %d %s, want no preferences", code, body)
		}
		if sts, err := e.store.Studies(context.Background()); err != nil || len(sts) != 0 {
			t.Errorf("after a refused study: %d studies stored (%v)", len(sts), err)
		}
		id := e.pref(tok, "tab\there\r\nnew line", "é 日本 🙂", "b")
		_, body, _ = e.do("GET", "/api/preferences", tok, nil)
		if !strings.Contains(string(body), `"tab\there\r\nnew line"`) || !strings.Contains(string(body), "é 日本 🙂") || id == 0 {
			t.Errorf("text with tab, CR, LF and non-ASCII came back as %s", body)
		}
	})
}

// TestPreferencesArePaged: GET /api/preferences returns at most "limit"
// rows (default 100, at most 1000), oldest first, with "has_more" and the
// "next_after" cursor; walking the pages gives every row once, on both stores.
func TestPreferencesArePaged(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		_, tok := e.user("alice")
		var want []int64
		for i := range 5 {
			want = append(want, e.pref(tok, "q"+strconv.Itoa(i), "a", "b"))
		}
		type page struct {
			Data      []struct{ ID int64 }
			HasMore   bool  `json:"has_more"`
			NextAfter int64 `json:"next_after"`
		}
		var got []int64
		path, sizes := "/api/preferences?limit=2", []int{}
		for range 10 {
			code, body, _ := e.do("GET", path, tok, nil)
			if code != 200 {
				t.Fatalf("GET %s: %d %s", path, code, body)
			}
			p := decode[page](t, body)
			sizes = append(sizes, len(p.Data))
			for _, d := range p.Data {
				got = append(got, d.ID)
			}
			if !p.HasMore {
				break
			}
			path = "/api/preferences?limit=2&after=" + strconv.FormatInt(p.NextAfter, 10)
		}
		if !slices.Equal(got, want) || !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("pages of 2 gave ids %v in pages %v, want %v in 2, 2, 1", got, sizes, want)
		}
		_, body, _ := e.do("GET", "/api/preferences", tok, nil)
		if p := decode[page](t, body); len(p.Data) != 5 || p.HasMore {
			t.Errorf("default page: %d rows, has_more %v; want 5, false", len(p.Data), p.HasMore)
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=x"} {
			if code, body, _ := e.do("GET", "/api/preferences?"+q, tok, nil); code != http.StatusBadRequest {
				t.Errorf("?%s: %d %s, want 400", q, code, body)
			}
		}
	})
}

// TestTokenRotationAndAccountDeletion: POST /api/me/token gives a new token
// and the old one stops working (data kept); DELETE /api/me and the admin's
// DELETE /api/users/{id} remove an account and all its preferences, on both
// stores; only the admin may delete others.
func TestTokenRotationAndAccountDeletion(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		aliceID, alice := e.user("alice")
		_, bob := e.user("bob")
		_, carol := e.user("carol")
		e.pref(alice, "q", "kept across rotation", "b")
		e.pref(bob, "q", "bob's", "b")
		code, body, _ := e.do("POST", "/api/me/token", alice, nil)
		rot := decode[struct{ ID, Token string }](t, body)
		if code != 200 || rot.Token == "" || rot.Token == alice || rot.ID != aliceID {
			t.Fatalf("rotate: %d %s", code, body)
		}
		if code, _, _ := e.do("GET", "/api/preferences", alice, nil); code != http.StatusUnauthorized {
			t.Errorf("old token after rotation: %d, want 401", code)
		}
		if _, body, _ := e.do("GET", "/api/preferences", rot.Token, nil); !strings.Contains(string(body), "kept across rotation") {
			t.Errorf("new token does not see the preferences: %s", body)
		}
		if code, _, _ := e.do("DELETE", "/api/users/"+aliceID, bob, nil); code != http.StatusUnauthorized {
			t.Errorf("a user deleting another: %d, want 401", code)
		}
		if code, body, _ := e.do("DELETE", "/api/users/"+aliceID, adminToken, nil); code != http.StatusNoContent {
			t.Errorf("admin deletes alice: %d %s", code, body)
		}
		if code, _, _ := e.do("DELETE", "/api/users/"+aliceID, adminToken, nil); code != http.StatusNotFound {
			t.Errorf("deleting alice again: %d, want 404", code)
		}
		if code, _, _ := e.do("GET", "/api/preferences", rot.Token, nil); code != http.StatusUnauthorized {
			t.Errorf("deleted user's token: %d, want 401", code)
		}
		if n, err := e.store.CountPreferences(context.Background(), aliceID, ""); err != nil || n != 0 {
			t.Errorf("deleted user's preferences: %d (%v), want 0", n, err)
		}
		if code, _, _ := e.do("DELETE", "/api/me", carol, nil); code != http.StatusNoContent {
			t.Errorf("carol deletes her account: %d", code)
		}
		if code, _, _ := e.do("GET", "/api/preferences", carol, nil); code != http.StatusUnauthorized {
			t.Errorf("carol's token after self-deletion: %d, want 401", code)
		}
		if _, body, _ := e.do("GET", "/api/preferences", bob, nil); !strings.Contains(string(body), "bob's") {
			t.Errorf("bob lost data when others were deleted: %s", body)
		}
	})
}

// TestStudyCreationIdempotencyKey: POST /api/studies with an
// Idempotency-Key creates one study however often it is retried (the key
// becomes its id, committed with the row); the same key with another study
// is 422; on both stores.
func TestStudyCreationIdempotencyKey(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		post := func(key string, body map[string]any) (int, []byte, http.Header) {
			t.Helper()
			js, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", e.base+"/api/studies", strings.NewReader(string(js)))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("Idempotency-Key", key)
			resp, err := e.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, out, resp.Header
		}
		study := map[string]any{"name": "pilot", "questions": []string{"q"}, "pairs": 1, "systems": []string{"fspo", "base"}}
		code, first, hdr := post("study-key-1", study)
		if code != 201 || hdr.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %d %s", code, first)
		}
		code, again, hdr := post("study-key-1", study)
		if code != 201 || hdr.Get("Idempotent-Replayed") != "true" || string(again) != string(first) {
			t.Errorf("retry: %d %s (replayed %q), want the first answer %s", code, again, hdr.Get("Idempotent-Replayed"), first)
		}
		study["name"] = "another"
		if code, body, _ := post("study-key-1", study); code != http.StatusUnprocessableEntity {
			t.Errorf("same key, other study: %d %s, want 422", code, body)
		}
		if code, body, _ := post("study-key-2", study); code != 201 {
			t.Errorf("another key: %d %s", code, body)
		}
		if sts, err := e.store.Studies(context.Background()); err != nil || len(sts) != 2 {
			t.Errorf("%d studies stored (%v), want 2", len(sts), err)
		}
		if code, body, _ := post("bad key with spaces", study); code != http.StatusBadRequest {
			t.Errorf("malformed key: %d %s, want 400", code, body)
		}
	})
}

// TestUserCreationIdempotencyKey: a retried POST /api/users with the same
// Idempotency-Key answers the same bytes (the same id and a token that
// works), also from another server instance over the same store; another
// name under the key is 422; after the user rotates its token the replay
// is refused (409) rather than answering a dead token; on both stores.
func TestUserCreationIdempotencyKey(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		post := func(base, key, name string) (int, []byte, http.Header) {
			t.Helper()
			req, _ := http.NewRequest("POST", base+"/api/users", strings.NewReader(`{"name":"`+name+`"}`))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			resp, err := e.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, out, resp.Header
		}
		code, first, hdr := post(e.base, "user-key-1", "alice")
		if code != 201 || hdr.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %d %s", code, first)
		}
		var u struct{ ID, Token string }
		if err := json.Unmarshal(first, &u); err != nil {
			t.Fatal(err)
		}
		// another instance over the same store and admin token: a restarted server
		s2, err := serve.New(serve.Config{Store: e.store, Engine: e.eng, AdminToken: adminToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		other := httptest.NewServer(s2)
		defer other.Close()
		for _, base := range []string{e.base, other.URL} {
			code, again, hdr := post(base, "user-key-1", "alice")
			if code != 201 || hdr.Get("Idempotent-Replayed") != "true" || string(again) != string(first) {
				t.Errorf("retry: %d %s (replayed %q), want the first answer %s", code, again, hdr.Get("Idempotent-Replayed"), first)
			}
		}
		if code, _, _ := e.do("GET", "/api/preferences", u.Token, nil); code != 200 {
			t.Errorf("the replayed token: %d, want 200", code)
		}
		if code, body, _ := post(e.base, "user-key-1", "bob"); code != http.StatusUnprocessableEntity {
			t.Errorf("same key, another name: %d %s, want 422", code, body)
		}
		_, a, _ := post(e.base, "", "carol")
		_, b, _ := post(e.base, "", "carol")
		_, c, _ := post(e.base, "user-key-2", "alice")
		if string(a) == string(b) || strings.Contains(string(c), u.ID) {
			t.Errorf("without a key or with another key: want new users, got %s, %s, %s", a, b, c)
		}
		if code, body, _ := e.do("POST", "/api/me/token", u.Token, nil); code != 200 {
			t.Fatalf("rotate: %d %s", code, body)
		}
		if code, body, _ := post(e.base, "user-key-1", "alice"); code != http.StatusConflict {
			t.Errorf("replay after the token was rotated: %d %s, want 409", code, body)
		}
		if code, body, _ := post(e.base, "bad key", "alice"); code != http.StatusBadRequest {
			t.Errorf("malformed key: %d %s, want 400", code, body)
		}
	})
}

// TestAllFitReadsPastItsFirstBatch: all-fit reads the newest preferences in
// growing batches (8, 16, 32, …); with 20 small ones under the budget, all 20
// become shots, and with a budget for 10 exactly the 10 newest do.
func TestAllFitReadsPastItsFirstBatch(t *testing.T) {
	for _, tc := range []struct{ budget, want int }{{6000, 20}, {10 * len("q00ab"), 10}} {
		e := newEnv(t, func(c *serve.Config) { c.Strategy = "all-fit"; c.ShotBudget = tc.budget; c.RateLimit = rate.Inf })
		_, tok := e.user("alice")
		for i := range 20 {
			e.pref(tok, fmt.Sprintf("q%02d", i), "a", "b")
		}
		code, body, _ := e.do("POST", "/v1/completions", tok, map[string]any{"prompt": "hi"})
		want := fmt.Sprintf("personalized with %d shots (last: a)", tc.want)
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("budget %d: %d %s, want %q", tc.budget, code, body, want)
		}
	}
}
