// Package chat renders a model's Jinja chat_template (from
// tokenizer_config.json) as Hugging Face renders it, with
// github.com/ardanlabs/jinja.
package chat

import (
	"encoding/json"
	"fmt"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ToolCalls are an assistant turn's function calls, in the OpenAI /
	// Hugging Face form {"type": "function", "function": {"name": …,
	// "arguments": {…}}}; templates that know tools render them.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// ToolCall is one function call of an assistant turn.
type ToolCall struct {
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name"`
		Arguments any    `json:"arguments"`
	} `json:"function"`
}

// Template is a compiled chat template with the special-token strings it
// may refer to.
type Template struct {
	tpl      *jinja.Template
	Source   string // the template's text
	BOS, EOS string
}

// Options are the variables a rendering passes besides the messages.
type Options struct {
	AddGenerationPrompt bool
	// Extra variables, e.g. "enable_thinking" for Qwen3's template.
	Extra map[string]any
}

// FromConfig reads chat_template, bos_token and eos_token from the bytes of
// tokenizer_config.json.
func FromConfig(config []byte) (*Template, error) {
	var c struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	var src string
	if err := json.Unmarshal(c.ChatTemplate, &src); err != nil || src == "" {
		return nil, fmt.Errorf("tokenizer_config.json chat_template: missing or not a string")
	}
	t, err := Compile(src)
	if err != nil {
		return nil, fmt.Errorf("tokenizer_config.json chat_template: %w", err)
	}
	t.BOS, t.EOS = tokenName(c.BOS), tokenName(c.EOS)
	return t, nil
}

// tokenName reads a token written as "text" or {"content": "text"}.
func tokenName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	_ = json.Unmarshal(raw, &o) // absent or null: no token
	return o.Content
}

// Compile parses a template source.
func Compile(src string) (*Template, error) {
	tpl, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("compile chat template: %w", err)
	}
	return &Template{tpl: tpl, Source: src}, nil
}

// Render renders the conversation.
func (t *Template) Render(msgs []Message, opt Options) (string, error) {
	list := make([]any, len(msgs))
	for k, m := range msgs {
		msg := map[string]any{"role": m.Role, "content": m.Content}
		if len(m.ToolCalls) > 0 { // absent otherwise: templates test `message.tool_calls`
			calls := make([]any, len(m.ToolCalls))
			for i, c := range m.ToolCalls {
				calls[i] = map[string]any{"type": c.Type, "function": map[string]any{"name": c.Function.Name, "arguments": c.Function.Arguments}}
			}
			msg["tool_calls"] = calls
		}
		list[k] = msg
	}
	data := map[string]any{
		"messages":              list,
		"add_generation_prompt": opt.AddGenerationPrompt,
		"bos_token":             t.BOS,
		"eos_token":             t.EOS,
	}
	for k, v := range opt.Extra {
		data[k] = v
	}
	s, err := t.tpl.Render(data)
	if err != nil {
		return "", fmt.Errorf("render chat template: %w", err)
	}
	return s, nil
}
