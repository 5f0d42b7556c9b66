package gguf

import (
	"fmt"
	"slices"
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

// prePatterns maps tokenizer.ggml.pre to the byte-level pre-tokenizer,
// whether text is NFC-normalized first, and whether a word already in the
// vocabulary is one token (llama.cpp's ignore_merges for Llama 3).
var prePatterns = map[string]struct {
	pattern      string
	nfc          bool
	ignoreMerges bool
}{
	"llama-bpe": {tokhf.PatternLlama3, false, true},
	"llama3":    {tokhf.PatternLlama3, false, true},
	"qwen2":     {tokhf.PatternQwen2, true, false},
	"gpt-2":     {tokhf.PatternGPT2, false, false},
	"smollm":    {tokhf.PatternSmolLM, false, false},
}

func (t *Tokenizer) byteLevel() (tokenizer.Codec, error) {
	pre, ok := prePatterns[t.Pre]
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.pre %q: unsupported pre-tokenizer (llama-bpe, qwen2, gpt-2, smollm)", t.Pre)
	}
	vocab := make(map[string]int, len(t.Tokens))
	var added []tokhf.AddedToken
	for id, p := range t.Tokens {
		typ := int32(TokenNormal)
		if t.TokenTypes != nil {
			typ = t.TokenTypes[id]
		}
		if typ == TokenUnused {
			continue // padding rows: never produced, never matched
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
	tok.SetIgnoreMerges(pre.ignoreMerges)
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

// FromHF is the GGUF metadata of a Hugging Face tokenizer with the model's
// chat template. A byte-level BPE (Llama 3, Qwen2/3, …) becomes
// tokenizer.ggml.model "gpt2" with the pre-tokenizer name llama.cpp gives its
// pattern; ids up to vocab (the embedding's rows) that the tokenizer does
// not use are written as unused "[PADn]" tokens, as Qwen's GGUF files have
// them. A SentencePiece one (Llama 2, Mistral) becomes "llama"
// (fromSentencePiece).
func FromHF(tok *tokhf.Tokenizer, chatTemplate string, vocab int) (*Tokenizer, error) {
	raw := tok.Raw()
	if raw.Pattern == "" {
		return fromSentencePiece(raw, chatTemplate, vocab)
	}
	pre := ""
	for name, p := range prePatterns {
		if p.pattern == raw.Pattern && p.nfc == raw.NFC && p.ignoreMerges == raw.IgnoreMerges && (pre == "" || name < pre) {
			pre = name
		}
	}
	if pre == "" {
		return nil, fmt.Errorf("tokenizer: only byte-level BPE tokenizers with Llama 3's, Qwen2's, GPT-2's or SmolLM's pre-tokenizer (and their normalizer and ignore_merges) can be written to GGUF")
	}
	t := &Tokenizer{Model: "gpt2", Pre: pre, Tokens: raw.Pieces, TokenTypes: make([]int32, len(raw.Pieces)),
		BOS: raw.BOS, EOS: raw.EOS, EOT: -1, PAD: -1, UNK: -1, ChatTemplate: chatTemplate}
	for i := range t.TokenTypes {
		t.TokenTypes[i] = TokenNormal
		if special, added := raw.Added[i]; added {
			t.TokenTypes[i] = TokenUserDefined
			if special {
				t.TokenTypes[i] = TokenControl
			}
		}
	}
	if vocab < len(t.Tokens) {
		return nil, fmt.Errorf("tokenizer has %d tokens, more than the model's %d embedding rows", len(t.Tokens), vocab)
	}
	t.Tokens = slices.Clone(t.Tokens)
	for id := len(t.Tokens); id < vocab; id++ {
		t.Tokens = append(t.Tokens, fmt.Sprintf("[PAD%d]", id))
		t.TokenTypes = append(t.TokenTypes, TokenUnused)
	}
	for _, m := range raw.Merges {
		t.Merges = append(t.Merges, m[0]+" "+m[1])
	}
	addBOS, addEOS := raw.AddBOS, false
	t.AddBOS, t.AddEOS = &addBOS, &addEOS
	return t, nil
}

// fromSentencePiece is the GGUF metadata of a tokenizer.json converted from
// SentencePiece (Llama 2, Mistral: BPE over U+2581-spaced pieces with byte
// fallback): tokenizer.ggml.model "llama", which merges by piece score.
// tokenizer.json keeps merges, not scores; its converter lists a piece's
// merges in the order of the piece's SentencePiece score, so a piece's score
// here is minus the rank of its first merge, and merging by score then
// merges as the ranks do (pieces no merge makes score below all others).
// Layout as llama.cpp and llama2.c read it: <unk>, BOS, EOS, then the 256
// byte pieces <0x00>…<0xFF>.
func fromSentencePiece(raw tokhf.Raw, chatTemplate string, vocab int) (*Tokenizer, error) {
	n := len(raw.Pieces)
	if raw.UNK != 0 || raw.BOS != 1 || raw.EOS != 2 || n < 3+256 || raw.Pieces[3] != "<0x00>" || raw.Pieces[258] != "<0xFF>" {
		return nil, fmt.Errorf("tokenizer: a SentencePiece tokenizer.json is written to GGUF in Llama 2's layout (<unk> 0, <s> 1, </s> 2, byte pieces 3–258); this one has unk %d, bos %d, eos %d", raw.UNK, raw.BOS, raw.EOS)
	}
	if vocab != n {
		return nil, fmt.Errorf("tokenizer has %d tokens; the model's embedding has %d rows", n, vocab)
	}
	id := make(map[string]int, n)
	for i, p := range raw.Pieces {
		id[p] = i
	}
	t := &Tokenizer{Model: "llama", Pre: "default", Tokens: raw.Pieces, Scores: make([]float32, n), TokenTypes: make([]int32, n),
		BOS: raw.BOS, EOS: raw.EOS, EOT: -1, PAD: -1, UNK: raw.UNK, ChatTemplate: chatTemplate}
	made := make([]bool, n)
	for rank, m := range raw.Merges {
		if i, ok := id[m[0]+m[1]]; ok && !made[i] {
			made[i], t.Scores[i] = true, -float32(rank)
		}
	}
	for i := range n {
		special, added := raw.Added[i]
		switch {
		case i == raw.UNK:
			t.TokenTypes[i] = TokenUnknown
		case added && special:
			t.TokenTypes[i] = TokenControl
		case added:
			t.TokenTypes[i] = TokenUserDefined
		case i >= 3 && i <= 258:
			t.TokenTypes[i] = TokenByte
		default:
			t.TokenTypes[i] = TokenNormal
		}
		if !made[i] {
			t.Scores[i] = -float32(len(raw.Merges))
		}
	}
	addBOS, addEOS := raw.AddBOS, false
	t.AddBOS, t.AddEOS = &addBOS, &addEOS
	return t, nil
}
