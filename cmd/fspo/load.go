package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fspo/hf"
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
	var m *model.Model
	var paths modelpath.Paths
	var err error
	if flag != "" && hf.IsFolder(flag) {
		m, paths, err = loadHF(flag)
	} else if paths, err = modelpath.Resolve(flag, env.Getenv); err == nil {
		m, err = model.Load(paths.Checkpoint)
	}
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

// hfTokenizers are the llama2.c tokenizer files looked for in a Hugging
// Face folder (one written by `fspo convert` from a llama2.c model).
var hfTokenizers = []string{"tok512.bin", "tokenizer.bin"}

// loadHF loads a Hugging Face model folder (one with config.json).
func loadHF(dir string) (*model.Model, modelpath.Paths, error) {
	paths := modelpath.Paths{Checkpoint: dir}
	for _, n := range hfTokenizers {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil && !st.IsDir() {
			paths.Tokenizer = filepath.Join(dir, n)
			break
		}
	}
	if paths.Tokenizer == "" {
		return nil, paths, fmt.Errorf("model %s: no tokenizer this build reads (%s); tokenizer.json is not supported yet", dir, strings.Join(hfTokenizers, " or "))
	}
	m, _, err := hf.Load(dir)
	return m, paths, err
}
