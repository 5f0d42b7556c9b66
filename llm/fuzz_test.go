package llm

import "testing"

// FuzzParseConfig: any input gives a config that validates or an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("endpoints: [{base_url: u, model: m}]\ntimeout: 3s"))
	f.Add([]byte(`{"endpoints": [{"base_url": "u", "model": "m", "weight": 2}], "stages": {"x": {"max_tokens": 3}}}`))
	f.Add([]byte("stages: {a: {temperature: 9}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("ParseConfig accepted a config that does not validate: %v", verr)
			}
		}
	})
}

// FuzzSchemaValidate: any model output is accepted or rejected, never a panic.
func FuzzSchemaValidate(f *testing.F) {
	f.Add(`{"answer": "x", "score": 1}`)
	f.Add(`{"answer": 1}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, text string) {
		if err := answerSchema.Validate(text); err == nil {
			if answerSchema.Validate(text) != nil {
				t.Fatal("Validate is not deterministic")
			}
		}
	})
}
