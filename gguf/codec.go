package gguf

import (
	"fmt"
	"strings"

	"fspo/tokenizer"
	tokhf "fspo/tokenizer/hf"
)

// Codec builds the tokenizer the vocabulary describes: a byte-level BPE
// ("gpt2") with the pre-tokenizer tokenizer.ggml.pre names, or a
// SentencePiece vocabulary ("llama") merged by score with byte fallback in
// llama2.c's layout (<unk>, BOS, EOS, then the 256 byte tokens).
func (t *Tokenizer) Codec() (tokenizer.Codec, error) {
	switch t.Model {
	case "gpt2":
		return t.byteLevel()
	case "llama":
		if t.BOS != tokenizer.BOS || t.EOS != tokenizer.EOS || len(t.Scores) != len(t.Tokens) {
			return nil, fmt.Errorf("tokenizer.ggml.model llama: only vocabularies with scores, BOS 1 and EOS 2 are supported (got BOS %d, EOS %d)", t.BOS, t.EOS)
		}
		pieces := make([]string, len(t.Tokens))
		for i, p := range t.Tokens {
			if t.TokenTypes == nil || t.TokenTypes[i] == TokenNormal || t.TokenTypes[i] == TokenUserDefined {
				p = strings.ReplaceAll(p, "\u2581", " ")
			}
			pieces[i] = p
		}
		tok, err := tokenizer.FromPieces(pieces, t.Scores)
		if err != nil {
			return nil, fmt.Errorf("tokenizer.ggml.tokens: %w", err)
		}
		return tokenizer.Llama2C(tok), nil
	}
	return nil, fmt.Errorf("tokenizer.ggml.model %q: unsupported (llama, gpt2)", t.Model)
}

// prePatterns maps tokenizer.ggml.pre to the byte-level pre-tokenizer and
// whether text is NFC-normalized first.
var prePatterns = map[string]struct {
	pattern string
	nfc     bool
}{
	"llama-bpe": {tokhf.PatternLlama3, false},
	"llama3":    {tokhf.PatternLlama3, false},
	"qwen2":     {tokhf.PatternQwen2, true},
}

func (t *Tokenizer) byteLevel() (tokenizer.Codec, error) {
	pre, ok := prePatterns[t.Pre]
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.pre %q: unsupported pre-tokenizer (llama-bpe, qwen2)", t.Pre)
	}
	vocab := make(map[string]int, len(t.Tokens))
	var added []tokhf.AddedToken
	for id, p := range t.Tokens {
		typ := int32(TokenNormal)
		if t.TokenTypes != nil {
			typ = t.TokenTypes[id]
		}
		if typ == TokenControl || typ == TokenUserDefined {
			added = append(added, tokhf.AddedToken{ID: id, Content: p, Special: typ == TokenControl})
		} else {
			vocab[p] = id
		}
	}
	merges := make([][2]string, len(t.Merges))
	for i, m := range t.Merges {
		l, r, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("tokenizer.ggml.merges[%d] %q: not two pieces separated by a space", i, m)
		}
		merges[i] = [2]string{l, r}
	}
	tok, err := tokhf.NewBPE(vocab, merges, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.ggml: %w", err)
	}
	if err := tok.UseByteLevel(pre.pattern, pre.nfc); err != nil {
		return nil, err
	}
	addBOS := t.AddBOS != nil && *t.AddBOS
	tok.SetSpecial(t.BOS, t.EOS, addBOS)
	return tok, nil
}

// TokenizerFile is the name of the tokenizer-only GGUF file a run folder
// of a GGUF model carries.
const TokenizerFile = "tokenizer.gguf"

// WriteTokenizer writes a GGUF file holding only t's metadata (no tensors),
// readable by ReadTokenizerFile.
func WriteTokenizer(path string, t *Tokenizer) error {
	w := &Writer{}
	w.Add("general.architecture", "tokenizer")
	w.KV = append(w.KV, t.metadata()...)
	return w.WriteFile(path)
}
