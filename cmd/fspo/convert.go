package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"fspo/ckpt"
	"fspo/hf"
	"fspo/model"
	"fspo/modelpath"
	"fspo/safetensors"
)

func init() {
	register(&command{name: "convert", summary: "convert a checkpoint: to llama2.c's format (.bin), fspo's own (.fspo) or a Hugging Face folder", run: runConvert})
}

func runConvert(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "convert", "--model M --out FILE.bin|FILE.fspo|FOLDER [--dtype f32|f16|bf16]")
	modelFlag := fs.String("model", "", "checkpoint file, run folder's model.fspo, model folder or name")
	out := fs.String("out", "", "output: FILE.bin writes llama2.c's format, FILE.fspo the project's, any other name a Hugging Face folder")
	dtype := fs.String("dtype", "", "weights dtype of a Hugging Face folder: f32, f16 or bf16 (default: the input folder's, else f32)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: fspo convert: --out is required", errUsage)
	}
	var m *model.Model
	var src *hf.Folder
	var paths modelpath.Paths
	var err error
	if hf.IsFolder(*modelFlag) { // keep the folder's config and tokenizer files for a Hugging Face output
		m, src, err = hf.Load(*modelFlag)
	} else {
		m, _, paths, err = loadModelPaths(env, *modelFlag)
	}
	if err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(*out, ".bin"):
		err = m.WriteLlama2C(*out)
	case strings.HasSuffix(*out, ".fspo"):
		var cp *ckpt.Checkpoint
		if cp, err = m.Checkpoint(); err == nil {
			err = ckpt.Save(*out, cp)
		}
	default:
		d := safetensors.DType(strings.ToUpper(*dtype))
		if d != "" && !d.Supported() {
			return fmt.Errorf("%w: fspo convert: --dtype must be f32, f16 or bf16", errUsage)
		}
		if err = hf.Save(*out, m, src, d); err == nil && src == nil { // a llama2.c tokenizer goes along
			err = copyFile(paths.Tokenizer, filepath.Join(*out, filepath.Base(paths.Tokenizer)))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s (%d parameters)\n", *out, m.Config.NumParams())
	return nil
}
