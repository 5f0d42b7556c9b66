package hf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestNewBPEFromRawData builds Qwen3's tokenizer from its raw vocabulary and
// merges, as a GGUF reader would, and checks it against the goldens.
func TestNewBPEFromRawData(t *testing.T) {
	full := loadTestdata(t, "qwen3")
	vocab := map[string]int{}
	var added []AddedToken
	for id, p := range full.pieces {
		if _, isAdded := full.special[id]; isAdded {
			added = append(added, AddedToken{ID: id, Content: p, Special: full.special[id]})
		} else {
			vocab[p] = id
		}
	}
	merges := make([][2]string, len(full.ranks))
	for pair, rank := range full.ranks {
		merges[rank] = [2]string{full.pieces[pair[0]], full.pieces[pair[1]]}
	}
	tok, err := NewBPE(vocab, merges, added)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.UseByteLevel(PatternQwen2, true); err != nil {
		t.Fatal(err)
	}
	tok.SetSpecial(-1, full.EOS(), false)
	data, err := os.ReadFile(filepath.Join("testdata", "qwen3", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := tok.Encode(c.Text, true); !slices.Equal(got, c.IDsSpecial) && len(got)+len(c.IDsSpecial) > 0 {
			t.Errorf("%q: got %v, want %v", c.Text, got, c.IDsSpecial)
		}
	}
	if err := tok.UseSentencePiece(); err == nil {
		t.Error("UseSentencePiece on a byte-level vocabulary: no error")
	}
}
