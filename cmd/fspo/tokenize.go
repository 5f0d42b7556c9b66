package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"fspo/modelpath"
	"fspo/tokenizer"
	"fspo/tokenizer/hf"
)

func init() {
	register(&command{name: "tokenize", summary: "token ids of a text under a model's tokenizer", run: runTokenize})
}

type tokenizeResult struct {
	IDs  []int  `json:"ids"`
	Text string `json:"text"`
}

// runTokenize implements `fspo tokenize --model M --text T [--raw] [--json]`.
func runTokenize(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "tokenize", "--model M --text T [--raw] [--json]")
	modelFlag := fs.String("model", "", "folder with tokenizer.json (+ tokenizer_config.json), or a llama2.c model folder or name")
	text := fs.String("text", "", "text to tokenize")
	raw := fs.Bool("raw", false, "add no special tokens (default: as the post-processor / add_bos_token says)")
	asJSON := fs.Bool("json", false, `print {"ids", "text"} as JSON (text: the ids decoded)`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tok, err := loadCodec(env, *modelFlag)
	if err != nil {
		return err
	}
	ids := tok.Encode(*text, !*raw)
	res := tokenizeResult{IDs: ids, Text: tok.DecodeIDs(ids, false)}
	if res.IDs == nil {
		res.IDs = []int{}
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	for _, id := range ids {
		fmt.Fprintf(env.Stdout, "%d\t%q\n", id, tok.Piece(id))
	}
	return nil
}

// loadCodec resolves --model to a tokenizer: a folder holding tokenizer.json,
// else a llama2.c model as modelpath.Resolve finds it.
func loadCodec(env *Env, flag string) (tokenizer.Codec, error) {
	if flag != "" {
		if _, err := os.Stat(filepath.Join(flag, "tokenizer.json")); err == nil {
			return hf.Load(flag)
		}
	}
	paths, err := modelpath.Resolve(flag, env.Getenv)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		return nil, err
	}
	return tokenizer.Llama2C(tok), nil
}
