package hf

import "slices"

// Raw is a tokenizer's vocabulary as plain data, in the form GGUF metadata
// stores it (NewBPE with UseByteLevel/UseSentencePiece and SetSpecial
// rebuild the tokenizer from it).
type Raw struct {
	Pieces []string
	Merges [][2]string  // in rank order
	Added  map[int]bool // added tokens: id -> special
	// Pattern is the byte-level pre-tokenizer (PatternLlama3, PatternQwen2,
	// PatternGPT2 or PatternSmolLM); empty for SentencePiece.
	Pattern string
	NFC     bool
	// IgnoreMerges: a word in the vocabulary is one token (Llama 3).
	IgnoreMerges bool
	BOS, EOS     int // -1: none
	UNK          int // -1: none
	AddBOS       bool
}

// Raw returns t's vocabulary as plain data.
func (t *Tokenizer) Raw() Raw {
	r := Raw{Pieces: t.pieces, Added: make(map[int]bool, len(t.special)),
		NFC: t.nfc, IgnoreMerges: t.ignoreMerges, BOS: t.bos, EOS: t.eos, UNK: t.unk, AddBOS: t.bos >= 0 && len(t.prefix) == 1 && t.prefix[0] == t.bos}
	for id, sp := range t.special {
		r.Added[id] = sp
	}
	type ranked struct{ rank, l, r int }
	merges := make([]ranked, 0, len(t.ranks))
	for pair, rank := range t.ranks {
		merges = append(merges, ranked{rank, pair[0], pair[1]})
	}
	slices.SortFunc(merges, func(a, b ranked) int { return a.rank - b.rank })
	for _, m := range merges {
		r.Merges = append(r.Merges, [2]string{t.pieces[m.l], t.pieces[m.r]})
	}
	if t.byteLevel {
		r.Pattern = t.split.pattern()
	}
	return r
}
