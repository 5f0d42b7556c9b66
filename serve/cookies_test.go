package serve_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"fspo/serve"
)

// getHome fetches / with optional extra headers and returns the response.
func getHome(t *testing.T, e *env, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+"/", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCookiesSecureBehindProxy: pages are never cached; cookies are Secure
// and HSTS is sent with --secure-cookies, or when a trusted proxy says
// X-Forwarded-Proto: https; the header from any other address is ignored.
func TestCookiesSecureBehindProxy(t *testing.T) {
	secureCookie := func(resp *http.Response) bool {
		cs := resp.Header.Values("Set-Cookie")
		return len(cs) > 0 && strings.Contains(cs[0], "; Secure")
	}
	https := map[string]string{"X-Forwarded-Proto": "https"}
	for _, tc := range []struct {
		name       string
		configure  func(*serve.Config)
		header     map[string]string
		wantSecure bool
	}{
		{"plain HTTP", nil, nil, false},
		{"forwarded by an untrusted address", nil, https, false},
		{"forwarded by another trusted proxy", func(c *serve.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, https, false},
		{"forwarded by a trusted proxy", func(c *serve.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }, https, true},
		{"--secure-cookies", func(c *serve.Config) { c.SecureCookies = true }, nil, true},
	} {
		e := newEnv(t, tc.configure)
		resp := getHome(t, e, tc.header)
		if got := secureCookie(resp); got != tc.wantSecure {
			t.Errorf("%s: Secure cookie %v (%q), want %v", tc.name, got, resp.Header.Values("Set-Cookie"), tc.wantSecure)
		}
		if hsts := resp.Header.Get("Strict-Transport-Security") != ""; hsts != tc.wantSecure {
			t.Errorf("%s: HSTS %v, want %v", tc.name, hsts, tc.wantSecure)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q on a page, want no-store", tc.name, cc)
		}
	}
}
