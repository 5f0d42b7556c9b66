package hf

import (
	"encoding/json"
	"fmt"
)

// node is a decoded JSON object of a tokenizer.json component.
type node = map[string]any

func decodeNode(raw json.RawMessage, field string) (node, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n node
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return n, nil
}

// flatten returns n and, for a Sequence, its members in order.
func flatten(n node) []node {
	if n == nil {
		return nil
	}
	out := []node{n}
	for _, key := range []string{"normalizers", "pretokenizers", "processors"} {
		if list, ok := n[key].([]any); ok {
			for _, m := range list {
				if mn, ok := m.(node); ok {
					out = append(out, flatten(mn)...)
				}
			}
		}
	}
	return out
}

// configure sets the pipeline from the normalizer, pre-tokenizer and
// post-processor of tokenizer.json.
func (t *Tokenizer) configure(f *fileJSON) error {
	norm, err := decodeNode(f.Normalizer, "normalizer")
	if err != nil {
		return err
	}
	pre, err := decodeNode(f.PreTokenizer, "pre_tokenizer")
	if err != nil {
		return err
	}
	post, err := decodeNode(f.PostProcessor, "post_processor")
	if err != nil {
		return err
	}
	spm := false
	for _, n := range flatten(norm) {
		switch n["type"] {
		case "NFC":
			t.nfc = true
		case "Prepend", "Replace":
			spm = true
		case "Sequence":
		default:
			return fmt.Errorf("normalizer.type %v: unsupported (NFC, Prepend, Replace)", n["type"])
		}
	}
	for _, n := range flatten(pre) {
		switch n["type"] {
		case "Split":
			pat, _ := n["pattern"].(node)
			switch pat["Regex"] {
			case patternLlama3:
				t.split.maxDigits = 3
			case patternQwen2:
				t.split.maxDigits = 1
			default:
				return fmt.Errorf("pre_tokenizer Split pattern %v: unsupported (Llama 3 and Qwen2 patterns are)", pat["Regex"])
			}
		case "ByteLevel":
			if n["add_prefix_space"] == true {
				return fmt.Errorf("pre_tokenizer ByteLevel with add_prefix_space: unsupported")
			}
			t.byteLevel = true
			t.split.gpt2 = n["use_regex"] == true
		case "Digits":
			if n["individual_digits"] != true {
				return fmt.Errorf("pre_tokenizer Digits without individual_digits: unsupported")
			}
			t.split.digits = true
		case "Sequence":
		default:
			return fmt.Errorf("pre_tokenizer.type %v: unsupported (Split, ByteLevel, Digits)", n["type"])
		}
	}
	if t.byteLevel == spm {
		return fmt.Errorf("pre_tokenizer/normalizer: neither byte-level BPE nor SentencePiece (Prepend/Replace ▁)")
	}
	switch {
	case t.split.gpt2 && t.split.maxDigits != 0:
		return fmt.Errorf("pre_tokenizer: a Split pattern and ByteLevel's own regex together are unsupported")
	case t.split.digits && !t.split.gpt2:
		return fmt.Errorf("pre_tokenizer: Digits is supported only before ByteLevel with use_regex (SmolLM's pipeline)")
	case t.byteLevel && !t.split.gpt2 && t.split.maxDigits == 0:
		return fmt.Errorf("pre_tokenizer: ByteLevel without a Split pattern or use_regex is unsupported")
	}
	if f.Model.UnkToken != nil {
		t.unk = t.idOr(*f.Model.UnkToken)
	}
	if spm && !f.Model.ByteFallback {
		return fmt.Errorf("model.byte_fallback: SentencePiece BPE without byte fallback is unsupported")
	}
	return t.postProcessor(post)
}

// postProcessor reads the ids TemplateProcessing puts before $A; special
// tokens after $A are not supported.
func (t *Tokenizer) postProcessor(post node) error {
	for _, n := range flatten(post) {
		if n["type"] != "TemplateProcessing" {
			continue
		}
		single, _ := n["single"].([]any)
		specials, _ := n["special_tokens"].(node)
		seenA := false
		for k, item := range single {
			it, _ := item.(node)
			if _, ok := it["Sequence"]; ok {
				seenA = true
				continue
			}
			st, _ := it["SpecialToken"].(node)
			name, _ := st["id"].(string)
			spec, _ := specials[name].(node)
			ids, _ := spec["ids"].([]any)
			if seenA || len(ids) == 0 {
				return fmt.Errorf("post_processor.single[%d]: only special tokens before $A are supported", k)
			}
			for _, id := range ids {
				f, _ := id.(float64)
				t.prefix = append(t.prefix, int(f))
			}
		}
	}
	return nil
}

func (t *Tokenizer) idOr(s string) int {
	if id, ok := t.vocab[s]; ok {
		return id
	}
	return -1
}

// readConfig takes bos_token and eos_token from tokenizer_config.json, and
// add_bos_token / add_eos_token where the file sets them: as transformers'
// fast tokenizers do, an explicit flag rebuilds the post-processor to
// [BOS if add_bos_token] text [EOS if add_eos_token] (an absent
// add_bos_token counts as true once add_eos_token is set, false for a
// tokenizer without a BOS token).
func (t *Tokenizer) readConfig(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var c node
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	name := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case node:
			s, _ := x["content"].(string)
			return s
		}
		return ""
	}
	t.bos, t.eos = t.idOr(name(c["bos_token"])), t.idOr(name(c["eos_token"]))
	addBOS, bosSet := c["add_bos_token"].(bool)
	addEOS, eosSet := c["add_eos_token"].(bool)
	if !bosSet && !eosSet {
		return nil // the post-processor of tokenizer.json decides
	}
	if !bosSet {
		addBOS = true
	}
	t.prefix, t.suffix = nil, nil
	if addBOS {
		if t.bos < 0 {
			if bosSet {
				return fmt.Errorf("add_bos_token is true but bos_token %q is not in the vocabulary", name(c["bos_token"]))
			}
		} else {
			t.prefix = []int{t.bos}
		}
	}
	if addEOS {
		if t.eos < 0 {
			return fmt.Errorf("add_eos_token is true but eos_token %q is not in the vocabulary", name(c["eos_token"]))
		}
		t.suffix = []int{t.eos}
	}
	return nil
}
