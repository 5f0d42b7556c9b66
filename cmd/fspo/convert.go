package main

import (
	"context"
	"fmt"
	"strings"

	"fspo/ckpt"
)

func init() {
	register(&command{name: "convert", summary: "convert a checkpoint: to llama2.c's format (.bin) or to fspo's own (.fspo)", run: runConvert})
}

func runConvert(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "convert", "--model M --out FILE.bin|FILE.fspo")
	modelFlag := fs.String("model", "", "checkpoint file, run folder's model.fspo, model folder or name")
	out := fs.String("out", "", "output file: .bin writes llama2.c's format, .fspo the project's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: fspo convert: --out is required", errUsage)
	}
	m, _, err := loadModel(env, *modelFlag)
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
		return fmt.Errorf("%w: fspo convert: --out must end in .bin (llama2.c) or .fspo", errUsage)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s (%d parameters)\n", *out, m.Config.NumParams())
	return nil
}
