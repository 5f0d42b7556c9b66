package hf

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"fspo/safetensors"
)

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

// Saving a loaded folder gives back its files byte for byte: the config,
// the weights in the input's dtype with the RoPE permutation undone, the
// generation config.
func TestSaveRoundTrip(t *testing.T) {
	for _, name := range []string{"llama-gqa-scaled", "llama-gqa-scaled-f16", "llama-untied", "qwen2", "qwen3"} {
		m, f := mustLoad(t, tiny(name))
		out := filepath.Join(t.TempDir(), name)
		if err := Save(out, m, f, ""); err != nil {
			t.Fatal(err)
		}
		for _, file := range []string{ConfigFile, WeightsFile, GenerationConfigFile} {
			if _, err := os.Stat(filepath.Join(tiny(name), file)); err == nil {
				sameFile(t, filepath.Join(tiny(name), file), filepath.Join(out, file))
			}
		}
	}
}

// A sharded folder saves as one file holding the same tensors; F32 output
// loads back to the same weights (the generated values are exact in every dtype).
func TestSaveShardedAsF32(t *testing.T) {
	m, f := mustLoad(t, tiny("llama-untied-sharded"))
	out := t.TempDir()
	if err := Save(out, m, f, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	m2, f2 := mustLoad(t, out)
	if f2.DType != safetensors.F32 || m2.Config != m.Config {
		t.Errorf("saved dtype %s config %+v", f2.DType, m2.Config)
	}
	a, b := m.W.Tensors(m.Config), m2.W.Tensors(m2.Config)
	for i := range a {
		if !slices.Equal(a[i].Data, b[i].Data) {
			t.Errorf("tensor %s differs", a[i].Name)
		}
	}
	if _, err := os.Stat(filepath.Join(out, IndexFile)); err == nil {
		t.Error("index written beside the single file")
	}
}

// Without a source folder the config is made from the engine's config and
// reads back to it.
func TestSaveWithoutSource(t *testing.T) {
	for _, name := range []string{"llama-gqa-scaled", "qwen3"} {
		m, _ := mustLoad(t, tiny(name))
		out := t.TempDir()
		if err := Save(out, m, nil, safetensors.BF16); err != nil {
			t.Fatal(err)
		}
		m2, _ := mustLoad(t, out)
		if m2.Config.RopeScaling != nil && *m2.Config.RopeScaling != *m.Config.RopeScaling {
			t.Errorf("%s: rope scaling %+v", name, m2.Config.RopeScaling)
		}
		c1, c2 := m.Config, m2.Config
		c1.RopeScaling, c2.RopeScaling = nil, nil
		if c1 != c2 {
			t.Errorf("%s: config %+v, want %+v", name, c2, c1)
		}
		sameFile(t, filepath.Join(tiny(name), WeightsFile), filepath.Join(out, WeightsFile))
	}
}

func TestIsFolder(t *testing.T) {
	if !IsFolder(tiny("qwen2")) || IsFolder(t.TempDir()) || IsFolder(filepath.Join(tiny("qwen2"), ConfigFile)) {
		t.Error("IsFolder")
	}
}
