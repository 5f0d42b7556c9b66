package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"fspo/runcard"
)

func init() {
	register(&command{name: "info", summary: "describe a model: its shape and the run card of a trained model (base, prompt, loss, data)", run: runInfo})
}

func runInfo(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "info", "[--model M] [--json]")
	modelFlag := fs.String("model", "", "checkpoint file, run or model folder, or name (default stories260K)")
	asJSON := fs.Bool("json", false, "print the run card as JSON (null for a model without one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lm, err := loadLM(env, *modelFlag)
	if err != nil {
		return err
	}
	m, paths := lm.Model, lm.Paths
	card, err := runcard.Load(paths.Checkpoint)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(card)
	}
	shape, err := json.Marshal(m.Config)
	if err != nil {
		return err
	}
	w := env.Stdout
	fmt.Fprintf(w, "model      %s\ntokenizer  %s\nparameters %d\nshape      %s\n", paths.Checkpoint, paths.Tokenizer, m.Config.NumParams(), shape)
	if lm.Chat != nil {
		fmt.Fprintf(w, "chat       end of turn %q, stops at %v\n", lm.Tok.Piece(lm.Chat.End), lm.Chat.Stop)
	}
	if card == nil {
		_, err := fmt.Fprintln(w, "run card   none (not a model trained by fspo train)")
		return err
	}
	return printCard(w, card)
}

// printCard writes the card's fields, one a line.
func printCard(w io.Writer, c *runcard.Card) error {
	model := func(m runcard.Model) string {
		if m.SHA256 == "" {
			return m.Path
		}
		return fmt.Sprintf("%s (sha256 %s)", m.Path, m.SHA256)
	}
	version := fmt.Sprint(c.Version)
	if c.Version == 0 {
		version = "0: read from the string map of an older fspo train"
	}
	lines := [][2]string{
		{"run card", "version " + version},
		{"base", model(c.Base)},
		{"init", model(c.Init)},
		{"template", c.Prompt.Template},
		{"variant", c.Prompt.Variant},
		{"layout", c.Prompt.Layout},
		{"shots", fmt.Sprint(c.Prompt.Shots)},
		{"stage", c.Train.Stage},
		{"loss", c.Train.Loss},
		{"beta", fmt.Sprint(c.Train.Beta)},
		{"data", c.Data.Dir},
		{"manifest", c.Data.ManifestSHA256},
		{"items", c.Data.Items},
		{"fspo", c.FSPO},
	}
	var b strings.Builder
	for _, l := range lines {
		if l[1] != "" {
			fmt.Fprintf(&b, "%-10s %s\n", l[0], l[1])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
