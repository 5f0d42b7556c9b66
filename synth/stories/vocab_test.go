package stories

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestVocabularyMeasured checks the vocabulary against the measurement it
// was chosen by (testdata/vocab.tsv, written by `go generate` from the
// stories260K model: see README.md): every value is written by the model
// unasked in some stories, and every name and animal is mentioned again by
// at least 70% of the continuations steered with it.
func TestVocabularyMeasured(t *testing.T) {
	raw, err := os.ReadFile("testdata/vocab.tsv")
	if err != nil {
		t.Fatal(err)
	}
	type measured struct{ free, steered float64 }
	m := map[string]measured{}
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("vocab.tsv line %d: %d fields, want 4", i+2, len(f))
		}
		free, err1 := strconv.ParseFloat(f[2], 64)
		steered, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("vocab.tsv line %d: %q", i+2, line)
		}
		m[f[0]+"/"+f[1]] = measured{free, steered}
	}
	words := 0
	for _, v := range vocabulary {
		got, ok := m[string(v.Category)+"/"+strings.ToLower(v.Word)]
		if !ok {
			t.Errorf("%s %s: not measured", v.Category, v.Word)
			continue
		}
		words++
		if got.free <= 0 {
			t.Errorf("%s %s: the model never writes it unasked", v.Category, v.Word)
		}
		if (v.Category == Name || v.Category == Animal) && got.steered < 70 {
			t.Errorf("%s %s: steering with it is mentioned again by %.1f%% of continuations, want ≥ 70%%", v.Category, v.Word, got.steered)
		}
	}
	if words < 20 {
		t.Fatalf("only %d vocabulary values checked", words)
	}
}
