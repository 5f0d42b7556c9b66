package main

import (
	"fmt"

	"fspo/model"
	"fspo/modelpath"
	"fspo/tokenizer"
)

// loadModel resolves --model (see modelpath.Resolve) and loads the checkpoint
// and its tokenizer, checking that they belong together.
func loadModel(env *Env, flag string) (*model.Model, *tokenizer.Tokenizer, error) {
	paths, err := modelpath.Resolve(flag, env.Getenv)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		return nil, nil, err
	}
	if err := tok.CheckVocab(m.Config.Vocab); err != nil {
		return nil, nil, fmt.Errorf("model %s with tokenizer %s: %w", paths.Checkpoint, paths.Tokenizer, err)
	}
	return m, tok, nil
}
