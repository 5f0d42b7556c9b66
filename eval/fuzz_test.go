package eval

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadSamples: any file content gives samples or an error, never a panic.
func FuzzReadSamples(f *testing.F) {
	f.Add([]byte(`{"user":"u","method":"fspo","score":1,"p_method_first":1,"p_baseline_first":0}` + "\n"))
	f.Add([]byte(`{"user":"u"}`))
	f.Add([]byte("{\"user\":\"u\",\"method\":\"m\",\"reward\":null}\n\n{"))
	f.Add([]byte(`{"user":"u","method":"m","unknown":1}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "samples.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		samples, err := ReadSamples(path)
		if err != nil {
			return
		}
		for _, s := range samples {
			if s.User == "" || s.Method == "" {
				t.Fatalf("sample without user or method accepted: %+v", s)
			}
		}
		Summarize(samples, 1)
	})
}
