package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"fspo/tokenizer/chat"
)

func init() {
	register(&command{name: "render", summary: "a conversation rendered through the model's chat template", run: runRender})
}

// runRender implements `fspo render --model M --messages FILE.json [--add-generation-prompt]`.
func runRender(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "render", "--model M --messages FILE.json [--add-generation-prompt]")
	modelFlag := fs.String("model", "", "folder with tokenizer_config.json holding chat_template")
	msgFile := fs.String("messages", "", `JSON file: [{"role": "user", "content": "..."}, ...]`)
	addGen := fs.Bool("add-generation-prompt", false, "end with the start of an assistant turn")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelFlag == "" || *msgFile == "" {
		return fmt.Errorf("%w: fspo render: --model and --messages are required", errUsage)
	}
	tpl, err := loadChatTemplate(*modelFlag)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*msgFile)
	if err != nil {
		return fmt.Errorf("fspo render: %w", err)
	}
	var msgs []chat.Message
	if err := json.Unmarshal(data, &msgs); err != nil {
		return fmt.Errorf("fspo render: messages %s: %w", *msgFile, err)
	}
	text, err := tpl.Render(msgs, chat.Options{AddGenerationPrompt: *addGen})
	if err != nil {
		return err
	}
	_, err = io.WriteString(env.Stdout, text)
	return err
}

// loadChatTemplate reads the chat template of a model folder.
func loadChatTemplate(dir string) (*chat.Template, error) {
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	tpl, err := chat.FromConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tpl, nil
}
