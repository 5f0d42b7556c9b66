package gguf_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"fspo/gguf"
	"fspo/gguf/internal/reftest"
	"fspo/modelpath"
	"fspo/tokenizer"
)

// TestMatchesLlamaCppGoldens compares the engine, running GGUF files through
// this package, with llama.cpp's distributions recorded in
// testdata/llamacpp (written by `(cd gguf/llamacpp && go test . -update)`, which
// also checks the same live). The stories260K files are rebuilt by the
// writer; their hash must match the file llama.cpp read.
func TestMatchesLlamaCppGoldens(t *testing.T) {
	type built struct {
		path string
		tok  *tokenizer.Tokenizer // nil: no tokenization to check
	}
	models := map[string]func(dir string) (built, error){
		"llama-2-tiny-random": func(dir string) (built, error) {
			path, err := reftest.TinyRandom(filepath.Join("testdata", "llama-2-tiny-random.gguf.gz"), dir)
			return built{path: path}, err
		},
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		models["stories260K-"+typ.String()] = func(dir string) (built, error) {
			path, _, tok, err := reftest.Stories(dir, typ)
			return built{path, tok}, err
		}
	}
	for name := range reftest.RandomConfigs {
		models["random-"+name+"-F32"] = func(dir string) (built, error) {
			path, _, err := reftest.Random(dir, name)
			return built{path: path}, err
		}
	}
	for name, build := range models {
		t.Run(name, func(t *testing.T) {
			g, err := reftest.ReadGolden(filepath.Join("testdata", "llamacpp", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := build(t.TempDir())
			path := b.path
			if err != nil {
				if os.Getenv("CI") == "" {
					t.Skipf("model not available: %v", err)
				}
				t.Fatal(err)
			}
			sum, err := reftest.SHA256(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum != g.FileSHA256 {
				t.Fatalf("%s has sha256 %s, the golden was made from %s: the writer's output changed; check it against llama.cpp with (cd gguf/llamacpp && go test . -update)", path, sum, g.FileSHA256)
			}
			m, _, err := gguf.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			dist, greedy := reftest.Engine(m)
			r, err := reftest.Compare(g, dist, greedy)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %v", name, r)
			for _, tk := range g.Tokenize {
				if b.tok != nil && !slices.Equal(b.tok.Encode(tk.Text, true, false), tk.IDs) {
					t.Errorf("llama.cpp tokenizes %q as %v, the tokenizer package as %v", tk.Text, tk.IDs, b.tok.Encode(tk.Text, true, false))
				}
			}
			if err := r.Check(g.Tolerance); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestStoriesRoundTrip: stories260K → GGUF F32 → model is exact.
func TestStoriesRoundTrip(t *testing.T) {
	if _, err := modelpath.FindDefault(); err != nil && os.Getenv("CI") == "" {
		t.Skipf("stories260K not found: %v", err)
	}
	path, m, _, err := reftest.Stories(t.TempDir(), gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	got, tok, err := gguf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Config
	want.Arch = "llama"
	if !reflect.DeepEqual(got.Config, want) {
		t.Errorf("config %+v, want %+v", got.Config, want)
	}
	for i, w := range m.W.Tensors(m.Config) {
		if g := got.W.Tensors(got.Config)[i]; !slices.Equal(g.Data, w.Data) {
			t.Errorf("tensor %s differs", w.Name)
		}
	}
	if !gguf.IsGGUF(path) || gguf.IsGGUF("golden_test.go") {
		t.Error("IsGGUF does not tell a GGUF file from a Go file")
	}
	// A damaged file named .gguf is still read as GGUF, so that its error
	// says what is wrong with it instead of looking for another format.
	damaged := filepath.Join(t.TempDir(), "damaged.gguf")
	if err := os.WriteFile(damaged, []byte(`{"not": "a GGUF file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if !gguf.IsGGUF(damaged) {
		t.Error("IsGGUF: a file named .gguf is not read as GGUF")
	}
	if _, _, err := gguf.Load(damaged); err == nil || !strings.Contains(err.Error(), "bad magic") || !strings.Contains(err.Error(), damaged) {
		t.Errorf("Load(damaged .gguf) = %v, want a bad-magic error naming the file", err)
	}
	if tok.Tokens[300] == "" || tok.BOS != 1 || tok.EOS != 2 || tok.TokenTypes[3] != gguf.TokenByte || tok.Tokens[3] != "<0x00>" {
		t.Errorf("tokenizer metadata: %q bos %d eos %d types %v", tok.Tokens[:5], tok.BOS, tok.EOS, tok.TokenTypes[:5])
	}
}
