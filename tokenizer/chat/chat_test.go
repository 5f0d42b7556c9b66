package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
		Thinking     *bool  `json:"enable_thinking"`
		Text         string `json:"text"`
	}
	readJSON(t, "testdata/golden.json", &cases)
	tpls := map[string]*Template{}
	same := 0
	for _, c := range cases {
		tpl := tpls[c.Model]
		if tpl == nil {
			path := filepath.Join("..", "hf", "testdata", c.Model, "tokenizer_config.json")
			if c.Model == "smollm2" || c.Model == "qwen2_5" { // written from the model cards
				path = filepath.Join("testdata", c.Model+"_tokenizer_config.json")
			}
			cfg, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tpl, err = FromConfig(cfg); err != nil {
				t.Fatalf("%s: %v", c.Model, err)
			}
			tpls[c.Model] = tpl
		}
		opt := Options{AddGenerationPrompt: c.AddGen}
		if c.Thinking != nil {
			opt.Extra = map[string]any{"enable_thinking": *c.Thinking}
		}
		got, err := tpl.Render(convs[c.Conversation], opt)
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

func TestFromConfigErrors(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{`{`, "tokenizer_config.json"},
		{`{"bos_token": "<s>"}`, "chat_template: missing"},
		{`{"chat_template": "{% if %}"}`, "chat_template: compile"},
	} {
		if _, err := FromConfig([]byte(c.config)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.config, err, c.want)
		}
	}
}
