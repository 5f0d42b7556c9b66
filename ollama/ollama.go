// Package ollama writes Ollama Modelfiles for the GGUF files fspo writes:
// FROM the model, an optional ADAPTER, and the chat format as Ollama's Go
// TEMPLATE with PARAMETER stop lines. The template is derived from the
// model's Jinja chat template by rendering it (its family — ChatML as in
// Qwen and SmolLM2, or Llama 3's header tokens — and its default system text
// are read off the renderings), so that Ollama prompts the model as
// transformers would.
package ollama

import (
	"fmt"
	"strconv"
	"strings"

	"fspo/tokenizer/chat"
)

// Format is a chat format as Ollama needs it.
type Format struct {
	Template string   // Go text/template over .System and .Messages (Role, Content)
	Stop     []string // end-of-turn strings
	// BOS: Ollama's tokenizer puts BOS in front (llama models add it), so
	// the template leaves out the bos_token the Jinja template writes.
	BOS string
}

const (
	probeUser   = "\x01user\x01"
	probeSystem = "\x02system\x02"
)

// FromChat derives the Ollama format of a Jinja chat template.
func FromChat(tpl *chat.Template) (Format, error) {
	gen := chat.Options{AddGenerationPrompt: true}
	plain, err := tpl.Render([]chat.Message{{Role: "user", Content: probeUser}}, gen)
	if err != nil {
		return Format{}, err
	}
	withSystem, err := tpl.Render([]chat.Message{{Role: "system", Content: probeSystem}, {Role: "user", Content: probeUser}}, gen)
	if err != nil {
		return Format{}, err
	}
	switch {
	case strings.Contains(plain, "<|im_start|>"):
		return chatML(plain, withSystem)
	case strings.Contains(plain, "<|start_header_id|>"):
		return llama3(tpl.BOS, plain, withSystem)
	}
	return Format{}, fmt.Errorf("chat template: neither ChatML (<|im_start|>) nor Llama 3 (<|start_header_id|>): no Ollama template for it")
}

// chatML: <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, the system
// turn (or the template's default system text) first.
func chatML(plain, withSystem string) (Format, error) {
	const sys = "<|im_start|>system\n"
	if !strings.HasPrefix(withSystem, sys+probeSystem+"<|im_end|>\n") || !strings.HasSuffix(plain, "<|im_start|>assistant\n") {
		return Format{}, fmt.Errorf("chat template: a ChatML variant this package does not know")
	}
	def := ""
	if rest, ok := strings.CutPrefix(plain, sys); ok {
		def, _, _ = strings.Cut(rest, "<|im_end|>")
	}
	var b strings.Builder
	b.WriteString("{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n")
	if def != "" {
		b.WriteString("{{ else }}<|im_start|>system\n" + escape(def) + "<|im_end|>\n")
	}
	b.WriteString("{{ end }}{{- range .Messages }}{{ if ne .Role \"system\" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}<|im_start|>assistant\n")
	return Format{Template: b.String(), Stop: []string{"<|im_end|>"}}, nil
}

// llama3: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>, with
// the system turn's fixed lead (Llama 3.1's knowledge dates) when the
// template writes one.
func llama3(bos, plain, withSystem string) (Format, error) {
	const head = "<|start_header_id|>system<|end_header_id|>\n\n"
	plain, withSystem = strings.TrimPrefix(plain, bos), strings.TrimPrefix(withSystem, bos)
	i := strings.Index(withSystem, probeSystem)
	if !strings.HasPrefix(withSystem, head) || i < 0 || !strings.HasSuffix(plain, "<|start_header_id|>assistant<|end_header_id|>\n\n") {
		return Format{}, fmt.Errorf("chat template: a Llama 3 variant this package does not know")
	}
	lead := withSystem[len(head):i]
	always := strings.HasPrefix(plain, head)
	var b strings.Builder
	if always {
		b.WriteString(head + escape(lead) + "{{ if .System }}{{ .System }}{{ end }}<|eot_id|>")
	} else {
		b.WriteString("{{ if .System }}" + head + escape(lead) + "{{ .System }}<|eot_id|>{{ end }}")
	}
	b.WriteString("{{- range .Messages }}{{ if ne .Role \"system\" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
	return Format{Template: b.String(), Stop: []string{"<|eot_id|>", "<|end_of_text|>"}, BOS: bos}, nil
}

// escape keeps literal text literal inside a Go template.
func escape(s string) string {
	return strings.ReplaceAll(s, "{{", `{{ "{{" }}`)
}

// Modelfile is an Ollama Modelfile: FROM model (a GGUF path, relative to the
// Modelfile), ADAPTER when set (a GGUF LoRA adapter), the format's TEMPLATE
// and stops.
func Modelfile(from, adapter string, f Format) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", from)
	if adapter != "" {
		fmt.Fprintf(&b, "ADAPTER %s\n", adapter)
	}
	if f.Template != "" {
		fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", f.Template)
	}
	for _, s := range f.Stop {
		fmt.Fprintf(&b, "PARAMETER stop %s\n", strconv.Quote(s))
	}
	return b.String()
}
