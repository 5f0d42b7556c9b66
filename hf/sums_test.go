package hf

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"fspo/safetensors"
)

// TestIndependentReader compares the Go reader's decoding of every tiny
// file with testdata/sums.json, written by testdata/sums.py, a reader of
// its own (json, struct and numpy): same tensors, dtypes, shapes, and sums
// and sums of squares of the values.
func TestIndependentReader(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "sums.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]struct {
		DType      safetensors.DType
		Shape      []int
		Sum, SumSq float64
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "tiny", "*", "*.safetensors"))
	if len(files) != len(want) || len(files) < 7 {
		t.Fatalf("%d files, sums.json lists %d", len(files), len(want))
	}
	for _, path := range files {
		rel, _ := filepath.Rel(filepath.Join("testdata", "tiny"), path)
		w := want[filepath.ToSlash(rel)]
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Tensors) != len(w) {
			t.Errorf("%s: %d tensors, sums.json has %d", rel, len(f.Tensors), len(w))
		}
		for _, info := range f.Tensors {
			x := make([]float32, info.Numel())
			if err := f.ReadF32(info.Name, x); err != nil {
				t.Fatal(err)
			}
			var sum, sumsq float64
			for _, v := range x {
				sum += float64(v)
				sumsq += float64(v) * float64(v)
			}
			ws, ok := w[info.Name]
			if !ok || ws.DType != info.DType || !slices.Equal(ws.Shape, info.Shape) ||
				math.Abs(sum-ws.Sum) > 1e-9*(1+math.Abs(ws.Sum)) || math.Abs(sumsq-ws.SumSq) > 1e-9*ws.SumSq {
				t.Errorf("%s %s: %s %v sum %v sumsq %v; sums.py says %+v", rel, info.Name, info.DType, info.Shape, sum, sumsq, ws)
			}
		}
		f.Close()
	}
}
