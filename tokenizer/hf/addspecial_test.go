package hf

import (
	"fspo/internal/testenv"
	"slices"
	"strings"
	"testing"
)

// TestAddSpecialFromConfig checks that explicit add_bos_token /
// add_eos_token in tokenizer_config.json rebuild the special tokens around
// the text (transformers' fast tokenizers: LlamaTokenizerFast and
// PreTrainedTokenizerFast update their post-processor from these flags),
// and that without them tokenizer.json's post-processor decides.
func TestAddSpecialFromConfig(t *testing.T) {
	const text = "Hello world"
	cases := []struct {
		model, config string
		bos, eos      bool
		err           string
	}{
		{"llama2", `{"bos_token":"<s>","eos_token":"</s>"}`, true, false, ""}, // post-processor: <s> $A
		{"llama2", `{"bos_token":"<s>","eos_token":"</s>","add_bos_token":false}`, false, false, ""},
		{"llama2", `{"bos_token":"<s>","eos_token":"</s>","add_eos_token":true}`, true, true, ""},
		{"llama2", `{"bos_token":"<s>","eos_token":"</s>","add_bos_token":false,"add_eos_token":true}`, false, true, ""},
		{"llama3_1", `{"bos_token":"<|begin_of_text|>","eos_token":"<|eot_id|>"}`, true, false, ""},
		{"llama3_1", `{"bos_token":"<|begin_of_text|>","eos_token":"<|eot_id|>","add_bos_token":false}`, false, false, ""},
		{"qwen3", `{"bos_token":null,"eos_token":"<|im_end|>","add_bos_token":false}`, false, false, ""},
		{"qwen3", `{"bos_token":null,"eos_token":"<|im_end|>","add_eos_token":true}`, false, true, ""},
		{"qwen3", `{"bos_token":null,"eos_token":"<|im_end|>","add_bos_token":true}`, false, false, "add_bos_token is true but bos_token"},
		{"qwen3", `{"bos_token":null,"eos_token":"<|nope|>","add_eos_token":true}`, false, false, "add_eos_token is true but eos_token"},
	}
	for _, c := range cases {
		data, _ := testenv.HFTokenizer(t, c.model)
		tok, err := Parse(data, []byte(c.config))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %s: err %v, want %q", c.model, c.config, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", c.model, c.config, err)
		}
		plain := tok.Encode(text, false)
		want := slices.Clone(plain)
		if c.bos {
			want = append([]int{tok.BOS()}, want...)
		}
		if c.eos {
			want = append(want, tok.EOS())
		}
		if got := tok.Encode(text, true); !slices.Equal(got, want) {
			t.Errorf("%s %s: Encode(addSpecial) = %v, want %v", c.model, c.config, got, want)
		}
	}
}
