package ollama

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"fspo/tokenizer/chat"
)

type message struct {
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// TestTemplateMatchesJinja renders the test conversations (those that end
// with the user's turn and use no tools) with the derived Ollama template —
// as Ollama does, with .System and .Messages — and with the model's Jinja
// template through tokenizer/chat (itself checked byte for byte against
// @huggingface/jinja), for Llama 3.1, Qwen2.5 and SmolLM2.
func TestTemplateMatchesJinja(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "tokenizer", "chat", "testdata", "conversations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var convs [][]message
	if err := json.Unmarshal(raw, &convs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, config string
		// Llama 3.1's Jinja template trims each message; Ollama's Go
		// templates have no trim, so padded messages are left out there.
		trims bool
	}{
		{"llama3_1", filepath.Join("..", "tokenizer", "hf", "testdata", "llama3_1", "tokenizer_config.json"), true},
		{"qwen2_5", filepath.Join("..", "tokenizer", "chat", "testdata", "qwen2_5_tokenizer_config.json"), false},
		{"smollm2", filepath.Join("..", "tokenizer", "chat", "testdata", "smollm2_tokenizer_config.json"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := os.ReadFile(tc.config)
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := chat.FromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f, err := FromChat(tpl)
			if err != nil {
				t.Fatal(err)
			}
			gt, err := template.New(tc.name).Parse(f.Template)
			if err != nil {
				t.Fatalf("Go template: %v\n%s", err, f.Template)
			}
			checked := 0
		conv:
			for i, c := range convs {
				if c[len(c)-1].Role != "user" {
					continue
				}
				var data struct {
					System   string
					Messages []chat.Message
				}
				var msgs []chat.Message
				for _, m := range c {
					if len(m.ToolCalls) > 0 || m.Role == "tool" || tc.trims && strings.TrimSpace(m.Content) != m.Content {
						continue conv
					}
					if m.Role == "system" {
						data.System = m.Content
					}
					msgs = append(msgs, chat.Message{Role: m.Role, Content: m.Content})
				}
				data.Messages = msgs
				want, err := tpl.Render(msgs, chat.Options{AddGenerationPrompt: true})
				if err != nil {
					t.Fatal(err)
				}
				var got strings.Builder
				if err := gt.Execute(&got, data); err != nil {
					t.Fatal(err)
				}
				if f.BOS+got.String() != want {
					t.Errorf("conversation %d:\nOllama %q\nJinja  %q", i, f.BOS+got.String(), want)
				}
				checked++
			}
			if checked < 3 {
				t.Errorf("only %d conversations compared", checked)
			}
			t.Logf("%s: %d conversations rendered identically", tc.name, checked)
		})
	}
}

func TestModelfile(t *testing.T) {
	got := Modelfile("./model.gguf", "./lora.gguf", Format{Template: "{{ .Prompt }}", Stop: []string{"<|im_end|>"}})
	want := "FROM ./model.gguf\nADAPTER ./lora.gguf\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\nPARAMETER stop \"<|im_end|>\"\n"
	if got != want {
		t.Errorf("Modelfile:\n%s\nwant\n%s", got, want)
	}
	if _, err := FromChat(mustCompile(t, "{% for m in messages %}{{ m.content }}{% endfor %}")); err == nil {
		t.Error("an unknown chat format was accepted")
	}
}

func mustCompile(t *testing.T, src string) *chat.Template {
	tpl, err := chat.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}
