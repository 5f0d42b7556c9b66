package main

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"time"

	"fspo/fewshot"
	"fspo/model"
	"fspo/tensor"
)

func init() {
	register(&command{name: "generate", summary: "continue a prompt with the model (greedy, temperature, top-p)", run: runGenerate})
}

// runGenerate prints what llama2.c's run prints for the same settings: the
// prompt's text followed by the generated text, then a newline; --steps
// counts positions including BOS and the prompt.
func runGenerate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "generate", "[--model M] [--prompt P] [--steps N] [--temperature T] [--topp P] [--seed S] [--dtype auto|f32|f16|bf16|q8_0] [--kv-cache f32|f16]")
	modelFlag := fs.String("model", "", "checkpoint file, model folder or name (default: stories260K from $FSPO_MODELS, ../shared/models or the cache, else the built-in copy)")
	prompt := fs.String("prompt", "", "text to continue")
	steps := fs.Int("steps", 256, "positions to run, counting BOS and the prompt (0: the model's context)")
	temp := fs.Float64("temperature", 1.0, "sampling temperature; 0 is greedy")
	topp := fs.Float64("topp", 0.9, "nucleus sampling mass in (0,1]; 1 turns it off")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	dtype := fs.String("dtype", "auto", dtypeHelp)
	var kv tensor.DType
	kvCacheFlag(fs, &kv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *temp < 0 || *topp <= 0 || *topp > 1 {
		return fmt.Errorf("%w: fspo generate: --temperature must be ≥ 0 and --topp in (0,1]", errUsage)
	}
	lm, err := loadLMAs(env, *modelFlag, *dtype)
	if err != nil {
		return err
	}
	m := lm.Model
	m.SetKVCache(kv) // f32 or f16, checked by the flag
	if *steps <= 0 || *steps > m.Positions() {
		*steps = m.Positions()
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ids := lm.Tok.Encode(*prompt, true)
	if len(ids) == 0 { // a tokenizer that adds no BOS, and no prompt
		return fmt.Errorf("%w: fspo generate: this model's tokenizer adds no BOS: give a --prompt", errUsage)
	}
	if len(ids) >= m.Positions() {
		return fmt.Errorf("prompt has %d tokens; the model's context is %d positions", len(ids), m.Positions())
	}
	w := bufio.NewWriter(env.Stdout)
	defer w.Flush()
	stops := fewshot.Codec{Tok: lm.Tok}.Stop(true)
	write, flush := echoPrompt(w, lm, ids, *prompt, stops)
	start := time.Now()
	n := 0
	opt := model.GenOptions{MaxTokens: *steps - len(ids) + 1, Temperature: float32(*temp), TopP: float32(*topp), Seed: *seed,
		Stop: stops}
	if lm.Chat != nil {
		opt.Stop = lm.Chat.Stop
	}
	if opt.MaxTokens <= 0 {
		w.WriteString("\n")
		return nil
	}
	_, err = m.Generate(ctx, ids, opt, func(t int) bool {
		write(t)
		n++
		return true
	})
	w.WriteString(flush() + "\n")
	if err != nil {
		return err
	}
	if el := time.Since(start); n > 0 {
		fmt.Fprintf(env.Stderr, "achieved tok/s: %.1f\n", float64(n+len(ids)-1)/el.Seconds())
	}
	return nil
}

// echoPrompt writes the prompt and returns how to write each new token and
// what to write at the end: run.c's exact output for a llama2.c model, the
// decoded text for the others.
func echoPrompt(w *bufio.Writer, lm *lmodel, ids []int, prompt string, stops []int) (write func(t int), flush func() string) {
	if lm.L2C != nil {
		prev := ids[0]
		for _, t := range ids[1:] {
			w.WriteString(lm.L2C.DecodePrintable(prev, t))
			prev = t
		}
		write = func(t int) { w.WriteString(lm.L2C.DecodePrintable(prev, t)); prev = t }
		return write, func() string { return "" }
	}
	// The stream first reads the prompt, so that the first new token is
	// decoded as a continuation (SentencePiece drops the space of a text's
	// first word, not of a later one).
	stream := fewshot.Codec{Tok: lm.Tok}.NewStream()
	for _, t := range ids {
		if !slices.Contains(stops, t) { // BOS ends a stories model's text
			stream.Push(t)
		}
	}
	w.WriteString(prompt)
	return func(t int) { w.WriteString(stream.Push(t)) }, stream.Flush
}
