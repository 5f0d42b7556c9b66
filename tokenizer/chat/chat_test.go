package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// golden.json comes from @huggingface/jinja 0.5.13: testdata/gen.mjs.
func TestGoldens(t *testing.T) {
	var convs [][]Message
	readJSON(t, "testdata/conversations.json", &convs)
	var cases []struct {
		Model        string `json:"model"`
		Conversation int    `json:"conversation"`
		AddGen       bool   `json:"add_generation_prompt"`
		Text         string `json:"text"`
	}
	readJSON(t, "testdata/golden.json", &cases)
	tpls := map[string]*Template{}
	same := 0
	for _, c := range cases {
		tpl := tpls[c.Model]
		if tpl == nil {
			cfg, err := os.ReadFile(filepath.Join("..", "hf", "testdata", c.Model, "tokenizer_config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if tpl, err = FromConfig(cfg); err != nil {
				t.Fatalf("%s: %v", c.Model, err)
			}
			tpls[c.Model] = tpl
		}
		got, err := tpl.Render(convs[c.Conversation], Options{AddGenerationPrompt: c.AddGen})
		if err != nil {
			t.Errorf("%s conversation %d: %v", c.Model, c.Conversation, err)
			continue
		}
		if got != c.Text {
			t.Errorf("%s conversation %d gen=%v:\ngot  %q\nwant %q", c.Model, c.Conversation, c.AddGen, got, c.Text)
			continue
		}
		same++
	}
	t.Logf("%d/%d renderings byte-identical", same, len(cases))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
