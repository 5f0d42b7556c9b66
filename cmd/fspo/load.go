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
	m, tok, _, err := loadModelPaths(env, flag)
	return m, tok, err
}

// loadModelPaths is loadModel that also says where the files were.
func loadModelPaths(env *Env, flag string) (*model.Model, *tokenizer.Tokenizer, modelpath.Paths, error) {
	paths, err := modelpath.Resolve(flag, env.Getenv)
	if err != nil {
		return nil, nil, paths, err
	}
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		return nil, nil, paths, err
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		return nil, nil, paths, err
	}
	if err := tok.CheckVocab(m.Config.Vocab); err != nil {
		return nil, nil, paths, fmt.Errorf("model %s with tokenizer %s: %w", paths.Checkpoint, paths.Tokenizer, err)
	}
	return m, tok, paths, nil
}
