package serve_test

import (
	"encoding/json"
	"testing"

	"golang.org/x/time/rate"

	"fspo/serve"
)

// FuzzRequestBodies sends arbitrary bodies to the JSON endpoints: every
// answer must be a success or a client error with a JSON error body, never
// a 5xx. Run: go test ./serve -fuzz FuzzRequestBodies.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"shots":2,"shot_strategy":"random"}`,
		`{"prompt":"x","max_tokens":1,"temperature":0,"top_p":1,"seed":-1}`,
		`{"prompt":["x"],"personalize":false}`,
		`{"prompt":"q","chosen":"a","rejected":"b"}`,
		`{"messages":null}`, `[]`, `"`, `{"prompt":1e999}`, "{\"prompt\":\"\xff\"}",
	} {
		f.Add(seed, uint8(0))
	}
	e := newEnv(f, func(c *serve.Config) { c.RateLimit = rate.Inf; c.MaxBodyBytes = 4096; c.MaxTextChars = 200 })
	_, tok := e.user("fuzz")
	e.pref(tok, "q", "a", "b")
	paths := []string{"/v1/chat/completions", "/v1/completions", "/api/preferences"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		path := paths[int(which)%len(paths)]
		te := *e // the same server, reporting to this input's t
		te.t = t
		code, out, _ := te.do("POST", path, tok, body)
		switch {
		case code == 200 || code == 201:
		case code == 400 || code == 413:
			var er struct{ Error struct{ Message string } }
			if err := json.Unmarshal(out, &er); err != nil || er.Error.Message == "" {
				t.Errorf("POST %s %q: %d with body %q, want a JSON error message", path, body, code, out)
			}
		default:
			t.Errorf("POST %s %q: status %d %s", path, body, code, out)
		}
	})
}
