// Package hf reads Hugging Face tokenizer.json files: byte-level BPE (Llama
// 3.x, Qwen2/2.5/3) and SentencePiece BPE with byte fallback (Llama 2,
// Mistral). A *Tokenizer satisfies tokenizer.Codec.
package hf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Tokenizer encodes and decodes text as one tokenizer.json describes.
type Tokenizer struct {
	bpe
	byteLevel    bool // ByteLevel pre-tokenizer and decoder (else SentencePiece)
	split        splitter
	nfc          bool
	ignoreMerges bool // a word already in the vocabulary is one token
	added        []AddedToken
	addedByFirst [256][]int // indexes into added by the first byte of content
	special      map[int]bool
	prefix       []int // ids the post-processor puts before the text
	suffix       []int // and after it (add_eos_token)
	bos, eos     int
	unk          int
}

type AddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type fileJSON struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json.
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return t, nil
}

// Parse builds a Tokenizer from the bytes of tokenizer.json and of
// tokenizer_config.json (which may be nil).
func Parse(data, config []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if f.Model.Type != "BPE" {
		return nil, fmt.Errorf("model.type %q: only BPE is supported", f.Model.Type)
	}
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	t, err := NewBPE(f.Model.Vocab, merges, f.AddedTokens)
	if err != nil {
		return nil, err
	}
	t.ignoreMerges = f.Model.IgnoreMerges
	if err := t.configure(&f); err != nil {
		return nil, err
	}
	if err := t.readConfig(config); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	return t, nil
}

// parseMerges accepts both merge spellings: "a b" strings and [a, b] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	var pairs [][2]string
	var strs []string
	if err := json.Unmarshal(raw, &strs); err != nil {
		if err2 := json.Unmarshal(raw, &pairs); err2 != nil {
			return nil, fmt.Errorf("model.merges: neither [\"a b\", ...] nor [[a, b], ...]: %w", err2)
		}
		return pairs, nil
	}
	for k, s := range strs {
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("model.merges[%d] %q: no space between the two tokens", k, s)
		}
		pairs = append(pairs, [2]string{a, b})
	}
	return pairs, nil
}

// NewBPE builds a tokenizer from a raw vocabulary (token -> id), merges in
// priority order and added tokens (e.g. read from GGUF metadata); the caller
// then sets the pipeline with UseByteLevel or UseSentencePiece and the special
// ids with SetSpecial (Parse does all this from tokenizer.json).
func NewBPE(vocab map[string]int, merges [][2]string, added []AddedToken) (*Tokenizer, error) {
	n := len(vocab)
	for _, a := range added {
		n = max(n, a.ID+1)
	}
	t := &Tokenizer{bpe: bpe{vocab: make(map[string]int, n), pieces: make([]string, n), ranks: make(map[[2]int]int, len(merges))},
		special: map[int]bool{}, bos: -1, eos: -1, unk: -1}
	for s, id := range vocab {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("model.vocab %q: id %d outside 0..%d", s, id, n-1)
		}
		t.vocab[s], t.pieces[id] = id, s
	}
	for k, a := range added {
		if a.ID < 0 || a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: bad id %d or empty content", k, a.ID)
		}
		t.vocab[a.Content], t.pieces[a.ID] = a.ID, a.Content
		t.special[a.ID] = a.Special
		t.addedByFirst[a.Content[0]] = append(t.addedByFirst[a.Content[0]], k)
	}
	t.added = added
	for k, m := range merges {
		if err := t.addMerge(k, m[0], m[1]); err != nil {
			return nil, fmt.Errorf("model.merges[%d]: %w", k, err)
		}
	}
	return t, nil
}
