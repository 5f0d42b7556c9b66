package stories

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCandidates(t *testing.T) {
	good := `{"id":"p00-c00","prompt_index":0,"prompt":"One day,","held_out":false,"steer":"x.","response":"x.","tokens":2,"persona":{"length":"short"},"persona_description":"d"}` + "\n"
	tests := []struct {
		name, content, want string
		n                   int
	}{
		{"one", good, "", 1},
		{"no final newline", strings.TrimSuffix(good, "\n"), "", 1},
		{"duplicate id", good + good, `:2: id "p00-c00" listed twice`, 0},
		{"unknown field", strings.Replace(good, `"tokens"`, `"toks"`, 1), `:1: json: unknown field "toks"`, 0},
		{"no response", strings.Replace(good, `"response":"x."`, `"response":" "`, 1), ":1: response: missing", 0},
		{"blank line", good + "\n" + good, ":2: empty line", 0},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CandidatesName), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadCandidates(dir)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CandidatesName)+tc.want) {
				t.Errorf("%s: error %v, want one ending %q", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("%s: %d candidates, %v; want %d", tc.name, len(got), err, tc.n)
		}
	}
}

// FuzzParseUsers: users.json is outside input; parsing never panics, and
// what parses re-encodes to something that parses the same.
func FuzzParseUsers(f *testing.F) {
	uf, err := drawUsers(5, 0, 1, "")
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := json.Marshal(uf)
	f.Add(seed)
	f.Add([]byte(`{"version":1,"users":[{"id":"a","kind":"train","prefs":[{"category":"length","value":"short","weight":1}]}]}`))
	f.Add([]byte(`{"version":1,"users":[{"id":"a","kind":"train","prefs":[{"category":"animal","value":"cat","weight":1e308}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseUsers(data)
		if err != nil {
			return
		}
		again, _ := json.Marshal(got)
		back, err := parseUsers(again)
		if err != nil {
			t.Fatalf("re-encoded users do not parse: %v", err)
		}
		for i := range got.Users {
			if got.Users[i].Reward("a cat and a dog in the park") != back.Users[i].Reward("a cat and a dog in the park") {
				t.Fatalf("user %d: reward changed across a round trip", i)
			}
		}
	})
}

// FuzzReward: any text gets a finite reward within the profile's bounds.
func FuzzReward(f *testing.F) {
	f.Add("Tom's cat went to the park. The cats were happy!")
	f.Add("")
	f.Add("\xff\xfe mice MICE Mouse")
	p := &Profile{ID: "f", Prefs: []Pref{{Animal, "mouse", 1.5}, {Place, "park", -0.7}, {Length, "short", 1}}}
	f.Fuzz(func(t *testing.T, text string) {
		r := p.Reward(text)
		if r < -0.7-1-1e-9 || r > 1.5+1e-9 {
			t.Fatalf("Reward(%q) = %v outside [-1.7, 1.5]", text, r)
		}
	})
}
