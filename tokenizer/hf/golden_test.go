package hf

import (
	"bytes"
	"encoding/json"
	"fspo/internal/testenv"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The goldens come from Hugging Face's Rust tokenizers on the real
// tokenizer.json files; testdata/gen/gen.mjs writes them (see its README).
var goldenModels = []string{"llama3_1", "qwen3", "llama2", "gpt2", "smollm2_shape"}

type goldenCase struct {
	Text        string `json:"text"`
	IDs         []int  `json:"ids"`
	IDsSpecial  []int  `json:"ids_special"`
	Decoded     string `json:"decoded"`
	DecodedSkip string `json:"decoded_skip"`
}

func loadTestdata(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	data, cfg := testenv.HFTokenizer(tb, name)
	t, err := Parse(data, cfg)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return t
}

func TestGoldens(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			tok := loadTestdata(t, name)
			data, err := os.ReadFile(filepath.Join("testdata", name, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cases []goldenCase
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			if len(cases) < 150 {
				t.Fatalf("%d golden cases, want ≥ 150", len(cases))
			}
			bad := 0
			for _, c := range cases {
				check := func(what string, got, want any) {
					if !equal(got, want) {
						bad++
						t.Errorf("%s %q: got %v, want %v", what, c.Text, got, want)
					}
				}
				check("ids", tok.Encode(c.Text, false), c.IDs)
				check("ids with special", tok.Encode(c.Text, true), c.IDsSpecial)
				check("decode", tok.DecodeIDs(c.IDsSpecial, false), c.Decoded)
				check("decode skipping special", tok.DecodeIDs(c.IDsSpecial, true), c.DecodedSkip)
			}
			t.Logf("%s: %d/%d strings agree", name, len(cases)-bad, len(cases))
		})
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]int); ok {
		y := b.([]int)
		return slices.Equal(x, y) || (len(x) == 0 && len(y) == 0)
	}
	return a == b
}

func TestEncodeSpeed(t *testing.T) {
	tok := loadTestdata(t, "llama3_1")
	text := bytes.Repeat([]byte("Few-shot preference optimization personalizes a model, 数字 1234567 🎉 `x := 42`.\n"), 2000)
	start := time.Now()
	ids := tok.Encode(string(text), false)
	d := time.Since(start)
	if len(ids) == 0 {
		t.Fatal("no ids")
	}
	t.Logf("encoded %d bytes into %d ids in %v: %.1f MB/s", len(text), len(ids), d, float64(len(text))/d.Seconds()/1e6)
}
