package hf

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The committed tiny models are what testdata/gen writes.
func TestTinyModelsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the generator")
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "run", "./testdata/gen", "-out", out)
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=simd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./testdata/gen: %v\n%s", err, b)
	}
	committed, _ := filepath.Glob(filepath.Join("testdata", "tiny", "*", "*"))
	written, _ := filepath.Glob(filepath.Join(out, "*", "*"))
	if len(committed) != len(written) || len(written) == 0 {
		t.Fatalf("generator wrote %d files, %d committed", len(written), len(committed))
	}
	for _, p := range committed {
		rel, _ := filepath.Rel(filepath.Join("testdata", "tiny"), p)
		sameFile(t, p, filepath.Join(out, rel))
	}
}
