package interop

import (
	"os"
	"path/filepath"
	"testing"

	"fspo/dataset"
)

// FuzzImportJSONL: any input either imports records that pass
// dataset.Record.Check or fails with an error; it never panics.
func FuzzImportJSONL(f *testing.F) {
	f.Add([]byte(`{"x": "q", "yw": "a", "yl": "b", "level": 1, "score_persona": "p"}` + "\n"))
	f.Add([]byte(`{"prompt": "p", "response_x": "a", "response_y": "b", "level_x": "x", "level_y": "y", "scorer_level": "s", "label": 1}`))
	f.Add([]byte(`{"label": 0.5}` + "\n" + `[1, 2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "in.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Import(path, Options{}, func(r dataset.Record) error {
			if err := r.Check(); err != nil {
				t.Fatalf("imported an invalid record %+v: %v", r, err)
			}
			return nil
		})
	})
}
