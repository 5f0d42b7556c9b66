package hf

import "fmt"

// Pre-tokenizer patterns UseByteLevel accepts.
const (
	PatternLlama3 = patternLlama3
	PatternQwen2  = patternQwen2
	PatternGPT2   = patternGPT2
	PatternSmolLM = patternSmolLM
)

// UseByteLevel makes t a byte-level BPE tokenizer splitting words with
// pattern (PatternLlama3, PatternQwen2, PatternGPT2 or PatternSmolLM),
// NFC-normalizing text when nfc.
func (t *Tokenizer) UseByteLevel(pattern string, nfc bool) error {
	switch pattern {
	case patternLlama3:
		t.split = splitter{maxDigits: 3}
	case patternQwen2:
		t.split = splitter{maxDigits: 1}
	case patternGPT2:
		t.split = splitter{gpt2: true}
	case patternSmolLM:
		t.split = splitter{gpt2: true, digits: true}
	default:
		return fmt.Errorf("byte-level pre-tokenizer pattern %q: unsupported", pattern)
	}
	t.byteLevel, t.nfc = true, nfc
	return nil
}

// UseSentencePiece makes t a SentencePiece BPE tokenizer with byte fallback;
// the vocabulary must hold the 256 byte tokens <0x00>..<0xFF>.
func (t *Tokenizer) UseSentencePiece() error {
	for b := 0; b < 256; b++ {
		if _, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; !ok {
			return fmt.Errorf("sentencepiece vocabulary: byte token <0x%02X> missing", b)
		}
	}
	t.byteLevel = false
	return nil
}

// SetSpecial sets the BOS and EOS ids (-1: none) and whether Encode with
// addSpecial puts BOS in front.
func (t *Tokenizer) SetSpecial(bos, eos int, addBOS bool) {
	t.bos, t.eos, t.prefix = bos, eos, nil
	if addBOS && bos >= 0 {
		t.prefix = []int{bos}
	}
}

// SetIgnoreMerges makes a word already in the vocabulary one token without
// merging (tokenizer.json's model.ignore_merges; Llama 3 sets it, and
// llama.cpp implies it for the llama-bpe pre-tokenizer).
func (t *Tokenizer) SetIgnoreMerges(on bool) { t.ignoreMerges = on }
