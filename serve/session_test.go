package serve_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"fspo/serve"
)

// sessionValue is the browser's session cookie.
func sessionValue(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "fspo_session" {
			return c.Value
		}
	}
	return ""
}

// signedInWith fetches / with only the given session cookie and reports
// whether the page is signed in.
func signedInWith(t *testing.T, e *env, value string) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+"/", nil)
	req.AddCookie(&http.Cookie{Name: "fspo_session", Value: value})
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(page), `id="signout"`)
}

// TestWebSessions: the session cookie is a random id stored hashed on the
// server, not the API token (nor usable as one); signing out revokes it on
// the server (a copied cookie stops working); sessions expire; rotating the
// token or deleting the account ends them. Runs on both stores.
func TestWebSessions(t *testing.T) {
	onBothStores(t, func(t *testing.T, e *env) {
		_, tok := e.user("alice")
		b := newBrowser(t, e)
		b.signin(tok)
		v := sessionValue(t, b)
		if v == "" || strings.Contains(v, tok) || v == tok {
			t.Fatalf("session cookie %q: want a random id, not the token", v)
		}
		if code, _, _ := e.do("GET", "/api/preferences", v, nil); code != http.StatusUnauthorized {
			t.Errorf("the session id as an API token: %d, want 401", code)
		}
		if !signedInWith(t, e, v) {
			t.Fatal("a copy of the cookie is not signed in")
		}
		b.post("/signout", url.Values{})
		if signedInWith(t, e, v) {
			t.Error("the cookie still works after sign-out: the session was not revoked")
		}

		// rotation ends the web sessions of the old token
		b.signin(tok)
		v2 := sessionValue(t, b)
		code, body, _ := e.do("POST", "/api/me/token", tok, nil)
		if code != 200 {
			t.Fatalf("rotate: %d %s", code, body)
		}
		if signedInWith(t, e, v2) {
			t.Error("a web session outlived the token rotation")
		}
		// admin sessions are sessions too
		a := newBrowser(t, e)
		a.signin(adminToken)
		if av := sessionValue(t, a); av == adminToken || !signedInWith(t, e, av) {
			t.Errorf("admin session cookie %q: want a working random id", av)
		}
	})
}

// TestWebSessionExpires: a session is valid for 30 days.
func TestWebSessionExpires(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *serve.Config) { c.Now = clock.Now })
	_, tok := e.user("alice")
	b := newBrowser(t, e)
	b.signin(tok)
	v := sessionValue(t, b)
	clock.advance(29 * 24 * time.Hour)
	if !signedInWith(t, e, v) {
		t.Error("session expired before 30 days")
	}
	clock.advance(2 * 24 * time.Hour)
	if signedInWith(t, e, v) {
		t.Error("session still valid after 31 days")
	}
}
