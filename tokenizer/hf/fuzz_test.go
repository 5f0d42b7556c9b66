package hf

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const tinyJSON = `{"added_tokens":[{"id":5,"content":"<s>","special":true}],
"normalizer":null,"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` +
	"\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"" +
	`}},{"type":"ByteLevel","use_regex":false}]},"post_processor":null,
"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4},"merges":["a b","Ġ ab"]}}`

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"not json", `{`, "parse tokenizer.json"},
		{"model type", strings.Replace(tinyJSON, `"type":"BPE"`, `"type":"Unigram"`, 1), `model.type "Unigram"`},
		{"merge token", strings.Replace(tinyJSON, `"a b"`, `"a zz"`, 1), "model.merges[0]"},
		{"merge spelling", strings.Replace(tinyJSON, `"a b"`, `"ab"`, 1), `model.merges[0] "ab"`},
		{"vocab id", strings.Replace(tinyJSON, `"ab":2`, `"ab":-7`, 1), `model.vocab "ab"`},
		{"pattern", strings.Replace(tinyJSON, `{1,3}`, `{1,4}`, 1), "pre_tokenizer Split pattern"},
		{"normalizer", strings.Replace(tinyJSON, `"normalizer":null`, `"normalizer":{"type":"NFKC"}`, 1), "normalizer.type NFKC"},
		{"split and regex", strings.Replace(tinyJSON, `"use_regex":false`, `"use_regex":true`, 1), "a Split pattern and ByteLevel's own regex"},
		{"prefix space", strings.Replace(tinyJSON, `"use_regex":false`, `"use_regex":false,"add_prefix_space":true`, 1), "add_prefix_space"},
		{"digits in groups", strings.Replace(tinyJSON, `[{"type":"Split"`, `[{"type":"Digits","individual_digits":false},{"type":"Split"`, 1), "Digits without individual_digits"},
		{"digits before a split", strings.Replace(tinyJSON, `[{"type":"Split"`, `[{"type":"Digits","individual_digits":true},{"type":"Split"`, 1), "Digits is supported only before ByteLevel with use_regex"},
	} {
		_, err := Parse([]byte(c.json), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := Parse([]byte(tinyJSON), nil); err != nil {
		t.Fatalf("valid file: %v", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("error %v, want one naming tokenizer.json", err)
	}
}

// FuzzLoadTokenizerJSON checks that no input makes the loader panic and that
// whatever loads encodes and decodes without panicking.
func FuzzLoadTokenizerJSON(f *testing.F) {
	f.Add([]byte(tinyJSON), "ab ab<s>b")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{},"merges":[]}}`), "x")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tok, err := Parse(data, nil)
		if err != nil {
			return
		}
		tok.DecodeIDs(tok.Encode(text, true), false)
	})
}

// FuzzRoundTrip checks decode(encode(s)) == NFC(s) for the byte-level
// Qwen3 tokenizer (NFC normalizer) and == s for Llama 3.1 on valid UTF-8.
func FuzzRoundTrip(f *testing.F) {
	qwen, llama := loadTestdata(f, "qwen3"), loadTestdata(f, "llama3_1")
	for _, s := range []string{"Hello  world\n", "cafe\u0301 😀", "I'M 12345 <|im_start|>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		if got := qwen.DecodeIDs(qwen.Encode(s, false), false); got != norm.NFC.String(s) {
			t.Errorf("qwen3 %q: round trip %q", s, got)
		}
		if got := llama.DecodeIDs(llama.Encode(s, false), false); got != s {
			t.Errorf("llama3.1 %q: round trip %q", s, got)
		}
	})
}
