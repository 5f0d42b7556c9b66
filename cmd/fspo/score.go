package main

import (
	"context"
	"encoding/json"
	"fmt"

	"fspo/model"
)

func init() {
	register(&command{name: "score", summary: "teacher-forced log-probs of a text under the model", run: runScore})
}

type scoreResult struct {
	Tokens   []int     `json:"tokens"`
	Logprobs []float32 `json:"logprobs"`
	Sum      float64   `json:"sum_logprob"`
}

func runScore(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "score", "[--model M] --text T [--raw] [--dtype f32|auto|f16|bf16|q8_0] [--json]")
	modelFlag := fs.String("model", "", "checkpoint file, model folder or name")
	text := fs.String("text", "", "text to score (the first token is the context of the rest)")
	asJSON := fs.Bool("json", false, `print {"tokens", "logprobs", "sum_logprob"} as JSON`)
	raw := fs.Bool("raw", false, "add no special tokens (by default the tokenizer's BOS, as its post-processor or add_bos_token says)")
	dtype := fs.String("dtype", "f32", "type to hold the weight matrices in: f32 (default: scores in full precision), auto (the model file's), f16, bf16 or q8_0")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *text == "" {
		return fmt.Errorf("%w: fspo score: --text is required", errUsage)
	}
	lm, err := loadLMAs(env, *modelFlag, *dtype)
	if err != nil {
		return err
	}
	m, tok := lm.Model, lm.Tok
	ids := tok.Encode(*text, !*raw)
	if len(ids) > m.Positions() {
		return fmt.Errorf("text has %d tokens; the model's context is %d positions", len(ids), m.Positions())
	}
	res := scoreResult{Tokens: ids, Logprobs: []float32{}}
	if len(ids) > 1 {
		p, err := m.Score([]model.Example{{Prompt: ids[:1], Completions: [][]int{ids[1:]}}}, nil)
		if err != nil {
			return err
		}
		res.Logprobs = append(res.Logprobs, p.Tokens(0, 0)...)
		res.Sum = p.Sum(0, 0)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(env.Stdout, "%-8s %-16s %s\n", "token", "piece", "logprob")
	for i, lp := range res.Logprobs {
		fmt.Fprintf(env.Stdout, "%-8d %-16q %.6f\n", ids[i+1], tok.Piece(ids[i+1]), lp)
	}
	fmt.Fprintf(env.Stdout, "sum %.6f over %d tokens\n", res.Sum, len(res.Logprobs))
	return nil
}
