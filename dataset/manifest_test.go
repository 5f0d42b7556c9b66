package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleManifest() Manifest {
	return Manifest{
		Version: ManifestVersion, Domain: "stories", Seed: 42, Created: "2026-11-26T22:00:00Z",
		TrainUsers: []string{"u1", "u2"}, TestUsers: []string{"u3", "u4"}, Interpolated: []string{"u4"},
		Files:  map[string]FileInfo{"train.jsonl": {SHA256: strings.Repeat("ab", 32), Records: 10}},
		Config: json.RawMessage(`{"shots":8}`), Notes: map[string]string{"why": "test"},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := sampleManifest()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after an atomic write, want 1 (no temporary files)", len(entries))
	}
}

func TestManifestStrict(t *testing.T) {
	base, _ := json.Marshal(sampleManifest())
	edit := func(f func(map[string]any)) string {
		var m map[string]any
		json.Unmarshal(base, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, data, want string
	}{
		{"unknown key", edit(func(m map[string]any) { m["extra"] = 1 }), "extra: unknown field"},
		{"key case", edit(func(m map[string]any) { m["Domain"] = m["domain"]; delete(m, "domain") }), "Domain: unknown field"},
		{"duplicate key", strings.Replace(string(base), `"seed":42`, `"seed":42,"seed":43`, 1), "seed: duplicate field"},
		{"file info key", edit(func(m map[string]any) {
			m["files"] = map[string]any{"a.jsonl": map[string]any{"sha256": strings.Repeat("0", 64), "records": 1, "size": 3}}
		}), `files: a.jsonl: unknown field "size"`},
		{"wrong type", edit(func(m map[string]any) { m["seed"] = "42" }), "seed: must be int64, got JSON string"},
		{"wrong version", edit(func(m map[string]any) { m["version"] = 2 }), "version: 2, want 1"},
		{"no domain", edit(func(m map[string]any) { delete(m, "domain") }), "domain: missing"},
		{"bad time", edit(func(m map[string]any) { m["created"] = "yesterday" }), `created: "yesterday" is not an RFC 3339 time`},
		{"overlap", edit(func(m map[string]any) { m["test_users"] = []string{"u2", "u3"} }), `test_users: user "u2" is also in train_users`},
		{"twice", edit(func(m map[string]any) { m["train_users"] = []string{"u1", "u1"} }), `train_users: user "u1" listed twice`},
		{"interpolated not held out", edit(func(m map[string]any) { m["interpolated"] = []string{"u1"} }), `interpolated: user "u1" is not in test_users`},
		{"bad hash", edit(func(m map[string]any) {
			m["files"] = map[string]any{"a.jsonl": map[string]any{"sha256": "abc", "records": 1}}
		}), `files: a.jsonl: sha256 "abc" is not 64 lowercase hex digits`},
		{"escaping path", edit(func(m map[string]any) {
			m["files"] = map[string]any{"../a.jsonl": map[string]any{"sha256": strings.Repeat("0", 64), "records": 1}}
		}), `files: "../a.jsonl" is not a path inside the directory`},
		{"not json", `{"version":`, "json: unexpected end of JSON input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ManifestName), []byte(tc.data), 0o644)
			_, err := ReadManifest(dir)
			want := filepath.Join(dir, ManifestName) + ": " + tc.want
			if err == nil || err.Error() != want {
				t.Errorf("ReadManifest\n got %v\nwant %s", err, want)
			}
		})
	}
	if err := WriteManifest(t.TempDir(), Manifest{Version: 1}); err == nil || !strings.HasSuffix(err.Error(), "domain: missing") {
		t.Errorf("WriteManifest of an invalid manifest: %v", err)
	}
}

func TestDescribeVerify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "train.jsonl")
	data := good + "\n" + `{"user":"u2","prompt":"q","chosen":"c","rejected":"d"}` + "\n"
	os.WriteFile(path, []byte(data), 0o644)
	fi, err := Describe(path)
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of data, computed independently with `sha256sum`.
	want := FileInfo{SHA256: "af138f1a67171e32ba603f13626123cedd32ed0d04f99a46396cd9c2c7f79c58", Records: 2}
	if fi != want {
		t.Errorf("Describe = %+v, want %+v", fi, want)
	}
	m := sampleManifest()
	m.Files = map[string]FileInfo{"train.jsonl": fi}
	if err := m.Verify(dir); err != nil {
		t.Errorf("Verify: %v", err)
	}
	os.WriteFile(path, []byte(good+"\n"), 0o644)
	if err := m.Verify(dir); err == nil || !strings.Contains(err.Error(), "train.jsonl has sha256") {
		t.Errorf("Verify of a changed file: %v", err)
	}
}

func TestSplit(t *testing.T) {
	users := make([]string, 100)
	for i := range users {
		users[i] = fmt.Sprintf("user%03d", i)
	}
	train, test := Split(users, 0.2, 7)
	if len(train) != 80 || len(test) != 20 {
		t.Fatalf("Split sizes %d/%d, want 80/20", len(train), len(test))
	}
	seen := map[string]bool{}
	for _, u := range append(append([]string{}, train...), test...) {
		if seen[u] {
			t.Errorf("user %s in both sets", u)
		}
		seen[u] = true
	}
	if len(seen) != 100 {
		t.Errorf("split covers %d users, want 100", len(seen))
	}
	rev := append([]string(nil), users...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	train2, test2 := Split(append(rev, "user001"), 0.2, 7)
	if !reflect.DeepEqual(train, train2) || !reflect.DeepEqual(test, test2) {
		t.Error("Split depends on input order or duplicates")
	}
	_, test3 := Split(users, 0.2, 8)
	if reflect.DeepEqual(test, test3) {
		t.Error("different seeds gave the same split")
	}
	for _, tc := range []struct {
		n          int
		frac       float64
		wantTrain  int
		wantTested int
	}{{2, 0.1, 1, 1}, {2, 0.9, 1, 1}, {3, 0, 3, 0}, {3, 1, 0, 3}, {1, 0.5, 0, 1}, {1, 0.4, 1, 0}, {0, 0.5, 0, 0}, {10, 0.25, 7, 3}} {
		tr, te := Split(users[:tc.n], tc.frac, 1)
		if len(tr) != tc.wantTrain || len(te) != tc.wantTested {
			t.Errorf("Split(%d users, %v) = %d/%d, want %d/%d", tc.n, tc.frac, len(tr), len(te), tc.wantTrain, tc.wantTested)
		}
	}
	if err := ValidFrac(1.5); err == nil {
		t.Error("ValidFrac(1.5) = nil")
	}
}
