package judge

import (
	"testing"

	"fspo/llm"
)

// FuzzParseAnswer: any answer text gives 0, 1 or an error.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{"m", "M", " Model M.", "**m**", "", "mM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseAnswer(text)
		if err == nil && p != 0 && p != 1 {
			t.Fatalf("ParseAnswer(%q) = %v", text, p)
		}
		q, _, err := Preference(llm.Response{Text: text, Logprobs: []llm.TokenLogprob{{Token: text, Top: map[string]float64{text: -0.5, "M": -1}}}})
		if err == nil && !(q >= 0 && q <= 1) {
			t.Fatalf("Preference(%q) = %v", text, q)
		}
	})
}

// FuzzCheckTemplate: any template text parses or errors, never panics.
func FuzzCheckTemplate(f *testing.F) {
	f.Add(DefaultTemplate())
	f.Add("[user]\n{{description}}")
	f.Fuzz(func(t *testing.T, text string) {
		if CheckTemplate(text) == nil {
			msgs, err := NewLLM(nil, LLMOptions{Template: text}).Prompt("d", "p", "a", "b")
			if err != nil || len(msgs) == 0 {
				t.Fatalf("template accepted but Prompt fails: %v", err)
			}
		}
	})
}
