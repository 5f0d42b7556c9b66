package gguf

import (
	"fmt"
	"strings"

	"fspo/tokenizer"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// Tokenizer is the vocabulary stored in a GGUF file (tokenizer.ggml.*) and
// its chat template, as plain data; building a tokenizer from it is the
// tokenizer packages' business.
type Tokenizer struct {
	// Model is tokenizer.ggml.model: "llama" (SentencePiece BPE with byte
	// fallback; pieces spell spaces as U+2581) or "gpt2" (byte-level BPE).
	Model string
	// Pre is tokenizer.ggml.pre, llama.cpp's name of the pre-tokenizer
	// ("default", "llama-bpe", "qwen2", "smollm", …); empty when absent.
	Pre        string
	Tokens     []string
	Scores     []float32 // nil when absent (byte-level BPE)
	TokenTypes []int32   // Token* constants; nil when absent
	Merges     []string  // "left right" pairs in rank order; nil for SentencePiece
	// Special token ids; -1 when the file names none.
	BOS, EOS, EOT, PAD, UNK int
	// AddBOS and AddEOS say whether encoding adds them; nil when the file
	// does not say (llama.cpp then decides by Model).
	AddBOS, AddEOS *bool
	ChatTemplate   string
}

// tokenKeys names the special-token id keys.
var tokenKeys = []struct {
	key string
	ptr func(*Tokenizer) *int
}{
	{"tokenizer.ggml.bos_token_id", func(t *Tokenizer) *int { return &t.BOS }},
	{"tokenizer.ggml.eos_token_id", func(t *Tokenizer) *int { return &t.EOS }},
	{"tokenizer.ggml.eot_token_id", func(t *Tokenizer) *int { return &t.EOT }},
	{"tokenizer.ggml.padding_token_id", func(t *Tokenizer) *int { return &t.PAD }},
	{"tokenizer.ggml.unknown_token_id", func(t *Tokenizer) *int { return &t.UNK }},
}

// ReadTokenizer extracts the tokenizer metadata; nil when the file has no
// tokenizer.ggml.model.
func ReadTokenizer(f *File) (*Tokenizer, error) {
	var err error
	t := &Tokenizer{}
	var ok bool
	if t.Model, ok, err = f.String("tokenizer.ggml.model"); err != nil || !ok {
		return nil, err
	}
	if t.Pre, _, err = f.String("tokenizer.ggml.pre"); err != nil {
		return nil, err
	}
	if t.ChatTemplate, _, err = f.String("tokenizer.chat_template"); err != nil {
		return nil, err
	}
	if t.Tokens, err = arrayKey[string](f, "tokenizer.ggml.tokens", true); err != nil {
		return nil, err
	}
	if t.Scores, err = arrayKey[float32](f, "tokenizer.ggml.scores", false); err != nil {
		return nil, err
	}
	if t.TokenTypes, err = arrayKey[int32](f, "tokenizer.ggml.token_type", false); err != nil {
		return nil, err
	}
	if t.Merges, err = arrayKey[string](f, "tokenizer.ggml.merges", false); err != nil {
		return nil, err
	}
	for name, n := range map[string]int{"scores": len(t.Scores), "token_type": len(t.TokenTypes)} {
		if n != 0 && n != len(t.Tokens) {
			return nil, fmt.Errorf("gguf %s: tokenizer.ggml.%s has %d values for %d tokens", f.Path, name, n, len(t.Tokens))
		}
	}
	for _, k := range tokenKeys {
		id, ok, err := f.Uint(k.key)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			*k.ptr(t) = -1
		case id >= uint64(len(t.Tokens)):
			return nil, fmt.Errorf("gguf %s: %s = %d is outside the %d tokens", f.Path, k.key, id, len(t.Tokens))
		default:
			*k.ptr(t) = int(id)
		}
	}
	for key, dst := range map[string]**bool{"tokenizer.ggml.add_bos_token": &t.AddBOS, "tokenizer.ggml.add_eos_token": &t.AddEOS} {
		switch v := f.Get(key).(type) {
		case nil:
		case bool:
			*dst = &v
		default:
			return nil, fmt.Errorf("gguf %s: %s holds %T, want a bool", f.Path, key, v)
		}
	}
	return t, nil
}

func arrayKey[T any](f *File, key string, required bool) ([]T, error) {
	switch v := f.Get(key).(type) {
	case nil:
		if required {
			return nil, fmt.Errorf("gguf %s: %s is missing", f.Path, key)
		}
		return nil, nil
	case []T:
		return v, nil
	default:
		var zero T
		return nil, fmt.Errorf("gguf %s: %s holds %T, want []%T", f.Path, key, v, zero)
	}
}

// metadata lists the tokenizer's GGUF keys in writing order.
func (t *Tokenizer) metadata() []KV {
	kv := []KV{{"tokenizer.ggml.model", t.Model}}
	if t.Pre != "" {
		kv = append(kv, KV{"tokenizer.ggml.pre", t.Pre})
	}
	kv = append(kv, KV{"tokenizer.ggml.tokens", t.Tokens})
	if t.Scores != nil {
		kv = append(kv, KV{"tokenizer.ggml.scores", t.Scores})
	}
	if t.TokenTypes != nil {
		kv = append(kv, KV{"tokenizer.ggml.token_type", t.TokenTypes})
	}
	if t.Merges != nil {
		kv = append(kv, KV{"tokenizer.ggml.merges", t.Merges})
	}
	for _, k := range tokenKeys {
		if id := *k.ptr(t); id >= 0 {
			kv = append(kv, KV{k.key, uint32(id)})
		}
	}
	if t.AddBOS != nil {
		kv = append(kv, KV{"tokenizer.ggml.add_bos_token", *t.AddBOS})
	}
	if t.AddEOS != nil {
		kv = append(kv, KV{"tokenizer.ggml.add_eos_token", *t.AddEOS})
	}
	if t.ChatTemplate != "" {
		kv = append(kv, KV{"tokenizer.chat_template", t.ChatTemplate})
	}
	return kv
}

// FromLlama2C describes a llama2.c SentencePiece vocabulary (as the
// tokenizer package reads tok512.bin / tokenizer.bin) in GGUF terms: ids
// 0, 1, 2 are <unk>, BOS and EOS, 3..258 the byte fallbacks <0x00>..<0xFF>,
// and the spaces llama2.c's exporter wrote for U+2581 are turned back.
func FromLlama2C(tok *tokenizer.Tokenizer) *Tokenizer {
	n := tok.VocabSize()
	t := &Tokenizer{Model: "llama", Pre: "default", Tokens: make([]string, n), Scores: make([]float32, n),
		TokenTypes: make([]int32, n), BOS: tokenizer.BOS, EOS: tokenizer.EOS, EOT: -1, PAD: -1, UNK: tokenizer.UNK}
	yes, no := true, false
	t.AddBOS, t.AddEOS = &yes, &no
	for i := range n {
		piece := tok.Piece(i)
		t.Scores[i] = tok.Score(i)
		switch {
		case i == tokenizer.UNK:
			t.TokenTypes[i] = TokenUnknown
		case i == tokenizer.BOS || i == tokenizer.EOS:
			t.TokenTypes[i] = TokenControl
		case i < tokenizer.MinVocab:
			t.TokenTypes[i] = TokenByte
		default:
			t.TokenTypes[i] = TokenNormal
			piece = strings.ReplaceAll(piece, " ", "\u2581")
		}
		t.Tokens[i] = piece
	}
	return t
}

// ReadTokenizerFile opens a GGUF file and extracts its tokenizer metadata.
func ReadTokenizerFile(path string) (*Tokenizer, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadTokenizer(f)
}
