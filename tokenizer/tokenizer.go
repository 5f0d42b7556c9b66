// Package tokenizer reads the sentencepiece-BPE vocabulary files written by
// llama2.c (tokenizer.bin, tok512.bin) and encodes and decodes text the way
// llama2.c's run.c does (github.com/karpathy/llama2.c, run.c: build_tokenizer,
// encode, decode, safe_printf).
//
// File format (llama2.c tokenizer.py export): a little-endian int32
// max_token_length, then for every token in id order a float32 merge score,
// an int32 byte length and that many bytes of the piece. The vocabulary size
// is not stored; it is the number of records. Ids 0, 1, 2 are <unk>, BOS and
// EOS and ids 3..258 are the byte fallbacks <0x00>..<0xFF>.
package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"fspo/fileio"
)

// Special token ids shared by every llama2.c vocabulary.
const (
	UNK = 0 // <unk>
	BOS = 1 // beginning of sequence
	EOS = 2 // end of sequence

	// byteOffset is the id of the byte fallback <0x00>; byte b is byteOffset+b
	// (run.c encode: "+3 is here because the first 3 vocab elements are
	// <unk>, <s>, </s>").
	byteOffset = 3
	// MinVocab is the smallest vocabulary that holds the specials and all
	// 256 byte fallbacks.
	MinVocab = byteOffset + 256

	// maxPieceLimit bounds max_token_length; longer pieces mean a corrupt file.
	maxPieceLimit = 1 << 16
)

// minMergeScore is the initial best score of run.c's merge loop
// ("float best_score = -1e10"): a merge whose score is not strictly above it
// (including NaN) is never taken.
const minMergeScore = float32(-1e10)

// Tokenizer is a loaded vocabulary. It is immutable and safe for concurrent use.
type Tokenizer struct {
	maxTokenLength int
	pieces         []string
	scores         []float32
	// ids maps a piece to its id; when a piece occurs twice the lowest id wins
	// (run.c's bsearch picks an unspecified one).
	ids map[string]int
	// canon maps an id to the lowest id with the same piece.
	canon []int32
	// merges maps the pair (canon[left], canon[right]) to the id of the piece
	// equal to their concatenation, for every pair run.c's merge loop could take.
	merges map[uint64]int32
	// spaceID is the id of the piece " " used as the dummy prefix, or -1.
	spaceID int
}

// Load reads a tokenizer file.
func Load(path string) (*Tokenizer, error) {
	t, err := fileio.Parse(path, Parse)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return t, nil
}

// Parse decodes the bytes of a tokenizer file. Errors name the byte offset
// and, past the header, the token id being read.
func Parse(data []byte) (*Tokenizer, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("offset 0: truncated: file has %d bytes, the max_token_length header needs 4", len(data))
	}
	mtl := int32(binary.LittleEndian.Uint32(data))
	if mtl <= 0 || mtl > maxPieceLimit {
		return nil, fmt.Errorf("offset 0: max_token_length %d is outside 1..%d", mtl, maxPieceLimit)
	}
	t := &Tokenizer{maxTokenLength: int(mtl), spaceID: -1}
	off := 4
	for off < len(data) {
		id := len(t.pieces)
		if len(data)-off < 8 {
			return nil, fmt.Errorf("offset %d: token %d: truncated: %d bytes left, a record header needs 8 (float32 score, int32 length)", off, id, len(data)-off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		switch {
		case n < 0:
			return nil, fmt.Errorf("offset %d: token %d: piece length %d is negative", off+4, id, n)
		case int(n) > t.maxTokenLength:
			return nil, fmt.Errorf("offset %d: token %d: piece length %d exceeds max_token_length %d", off+4, id, n, t.maxTokenLength)
		case int(n) > len(data)-off-8:
			return nil, fmt.Errorf("offset %d: token %d: truncated: piece of %d bytes, %d left", off+8, id, n, len(data)-off-8)
		}
		t.scores = append(t.scores, score)
		t.pieces = append(t.pieces, string(data[off+8:off+8+int(n)]))
		off += 8 + int(n)
	}
	if len(t.pieces) < MinVocab {
		return nil, fmt.Errorf("offset %d: vocabulary has %d tokens, fewer than the %d needed for <unk>, BOS, EOS and the 256 byte fallbacks", off, len(t.pieces), MinVocab)
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return t, nil
}

// FromPieces builds a tokenizer from its pieces and merge scores (e.g. a
// GGUF file's tokenizer.ggml.tokens and .scores, spaces written as spaces),
// laid out as llama2.c's: <unk>, BOS, EOS, then the 256 byte fallbacks.
func FromPieces(pieces []string, scores []float32) (*Tokenizer, error) {
	if len(pieces) != len(scores) {
		return nil, fmt.Errorf("vocabulary: %d pieces but %d scores", len(pieces), len(scores))
	}
	if len(pieces) < MinVocab {
		return nil, fmt.Errorf("vocabulary has %d tokens, fewer than the %d needed for <unk>, BOS, EOS and the 256 byte fallbacks", len(pieces), MinVocab)
	}
	t := &Tokenizer{pieces: slices.Clone(pieces), scores: slices.Clone(scores), spaceID: -1}
	for _, p := range pieces {
		t.maxTokenLength = max(t.maxTokenLength, len(p))
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return t, nil
}

// finish checks the byte fallbacks and indexes the vocabulary.
func (t *Tokenizer) finish() error {
	for b := 0; b < 256; b++ {
		id := byteOffset + b
		if want := fmt.Sprintf("<0x%02X>", b); t.pieces[id] != want {
			return fmt.Errorf("token %d: piece %q, want the byte fallback %q", id, t.pieces[id], want)
		}
	}
	t.index()
	return nil
}

// index builds the piece lookup and the pair-merge table.
func (t *Tokenizer) index() {
	t.ids = make(map[string]int, len(t.pieces))
	t.canon = make([]int32, len(t.pieces))
	for id, p := range t.pieces {
		first, dup := t.ids[p]
		if !dup {
			t.ids[p], first = id, id
		}
		t.canon[id] = int32(first)
	}
	if id, ok := t.ids[" "]; ok {
		t.spaceID = id
	}
	// A pair (a, b) merges into c when piece(a)+piece(b) == piece(c): enumerate
	// every split of every piece instead of concatenating at encode time.
	// Pieces are keyed by their lowest id so duplicates add no entries.
	t.merges = make(map[uint64]int32)
	for s, c := range t.ids {
		if !(t.scores[c] > minMergeScore) {
			continue
		}
		for k := 0; k <= len(s); k++ {
			a, okA := t.ids[s[:k]]
			b, okB := t.ids[s[k:]]
			if okA && okB {
				t.merges[pairKey(int32(a), int32(b))] = int32(c)
			}
		}
	}
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// MaxTokenLength is the longest piece in bytes, as recorded in the file header.
func (t *Tokenizer) MaxTokenLength() int { return t.maxTokenLength }

// Piece is the raw vocabulary string of id (byte fallbacks read "<0xXX>").
// It panics when id is outside [0, VocabSize()), like a slice index.
func (t *Tokenizer) Piece(id int) string {
	t.mustID(id)
	return t.pieces[id]
}

// Score is the merge score of id.
func (t *Tokenizer) Score(id int) float32 {
	t.mustID(id)
	return t.scores[id]
}

// ID returns the id of a piece and whether it is in the vocabulary.
func (t *Tokenizer) ID(piece string) (int, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

func (t *Tokenizer) mustID(id int) {
	if id < 0 || id >= len(t.pieces) {
		panic(fmt.Sprintf("tokenizer: token id %d outside the vocabulary [0, %d)", id, len(t.pieces)))
	}
}

// CheckIDs reports the first token id outside the vocabulary, for ids that
// come from outside the program (files, requests).
func (t *Tokenizer) CheckIDs(tokens []int) error {
	for i, id := range tokens {
		if id < 0 || id >= len(t.pieces) {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d tokens", id, i, len(t.pieces))
		}
	}
	return nil
}

// CheckVocab reports an error when a model's vocabulary size differs from
// the tokenizer's (llama2.c checkpoints store it negated when the classifier
// is not shared; pass its absolute value).
func (t *Tokenizer) CheckVocab(modelVocab int) error {
	if modelVocab != len(t.pieces) {
		return fmt.Errorf("model has a vocabulary of %d tokens but the tokenizer has %d: use the tokenizer file the model was trained with", modelVocab, len(t.pieces))
	}
	return nil
}
