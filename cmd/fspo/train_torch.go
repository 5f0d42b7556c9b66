package main

import (
	"context"
	"fmt"
	"path/filepath"

	"fspo/torch"
	"fspo/train"
)

// trainTorch runs the stage r on PyTorch (package torch), or with
// --stage-only writes what the trainer reads and says how to run it.
func trainTorch(ctx context.Context, env *Env, r *train.Run, tf trainFlags) error {
	name := filepath.Base(tf.out)
	stagePr := newProgress(env, "stage "+name, r.TotalSteps())
	opt := torch.Options{NProc: tf.engine.nproc, Python: tf.engine.python, Log: env.Stderr,
		Stage: torch.StageOptions{Progress: func(step, _ int64) { stagePr.set(step, "episodes written") }}}
	if tf.engine.stageOnly {
		dir, err := torch.Stage(ctx, r, opt.Stage)
		stagePr.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "staged %s; on each node run:\n  torchrun --nnodes NODES --node_rank RANK --nproc_per_node GPUS --master_addr HOST --master_port 29500 %s --stage-dir %s\nthen the trained Hugging Face folder is %s\n",
			dir, filepath.Join(dir, torch.TrainerFile), dir, filepath.Join(dir, torch.OutDir))
		return nil
	}
	var pr *progress
	opt.Progress = func(step, total int64, loss float64) {
		if pr == nil {
			stagePr.done()
			pr = newProgress(env, "train "+name, total)
		}
		pr.set(step, fmt.Sprintf("loss %.4f", loss))
	}
	err := torch.Train(ctx, r, opt)
	if pr != nil {
		pr.done()
	} else {
		stagePr.done()
	}
	if err != nil {
		return err
	}
	if err := train.PlotMetrics(filepath.Join(tf.out, train.MetricsFile), filepath.Join(tf.out, "curves.png")); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "train: wrote %s (PyTorch; its Hugging Face folder: %s)\n", filepath.Join(tf.out, train.ModelFile), filepath.Join(tf.out, torch.Dir, torch.OutDir))
	return nil
}
