// Package fewshot turns few-shot episodes into the token sequences the model
// is trained on and generates from, and generated tokens back into text.
//
// A prompt is BOS followed by the encoding of episode.PromptFor's text. A
// completion is the concatenation of its parts encoded one by one — the
// header (layout.Preferred), the response, and for COT the description part
// first — then EOS. Encoding part by part (each with the tokenizer's dummy
// leading space) makes the header a fixed token sequence, so generation can
// force it and find the boundary between description and response exactly.
package fewshot

import (
	"fmt"
	"slices"
	"strings"

	"fspo/dataset"
	"fspo/episode"
	"fspo/model"
	"fspo/tokenizer"
)

// Codec encodes and decodes one variant in one layout.
type Codec struct {
	Tok     *tokenizer.Tokenizer
	Variant episode.Variant
	Layout  episode.Layout
}

func (c Codec) enc(s string) []int { return c.Tok.Encode(s, false, false) }

// Prompt returns BOS and the prompt's tokens.
func (c Codec) Prompt(shots []dataset.Record, question, description string) []int {
	return c.Tok.Encode(episode.PromptFor(c.Variant, c.Layout, shots, question, description), true, false)
}

// Completion returns the tokens of a completion, EOS last.
func (c Codec) Completion(response, description string) []int {
	var out []int
	if c.Variant == episode.COT {
		out = append(out, c.enc(c.Layout.Description)...)
		out = append(out, c.enc(description)...)
		out = append(out, c.separator()...)
	} else {
		out = append(out, c.enc(c.Layout.Preferred)...)
	}
	out = append(out, c.enc(response)...)
	return append(out, model.EOS)
}

// separator ends a COT description and starts the response.
func (c Codec) separator() []int { return c.enc("\n" + c.Layout.Preferred) }

// DescriptionEnd is the length of a COT completion's description part:
// the index just past the first separator between description and
// response in toks (tokens after Header), or -1 when there is none yet.
func (c Codec) DescriptionEnd(toks []int) int {
	sep := c.separator()
	for i := 0; i+len(sep) <= len(toks); i++ {
		if slices.Equal(toks[i:i+len(sep)], sep) {
			return i + len(sep)
		}
	}
	return -1
}

// Header is the fixed start of every completion; generation forces it.
func (c Codec) Header() []int {
	if c.Variant == episode.COT {
		return c.enc(c.Layout.Description)
	}
	return c.enc(c.Layout.Preferred)
}

// Text decodes tokens produced after a header (no BOS), dropping the
// tokenizer's dummy leading space and anything from EOS on.
func (c Codec) Text(toks []int) string {
	var b strings.Builder
	for _, t := range toks {
		if t == model.EOS || t == model.BOS {
			break
		}
		b.WriteString(c.Tok.Decode(0, t))
	}
	return strings.TrimPrefix(b.String(), " ")
}

// Parse splits tokens generated after Header into the description (COT only)
// and the response.
func (c Codec) Parse(generated []int) (description, response string, err error) {
	if c.Variant != episode.COT {
		return "", c.Text(generated), nil
	}
	end := c.DescriptionEnd(generated)
	if end < 0 {
		return c.Text(generated), "", fmt.Errorf("generated description has no response part")
	}
	return c.Text(generated[:end-len(c.separator())]), c.Text(generated[end:]), nil
}

// Encode tokenizes an episode for training: prompt, chosen and rejected
// completions. For COT the rejected completion carries the rejected
// response's own description (Query.RejectedDescription), else other.
func (c Codec) Encode(ep episode.Episode, other string) (prompt, chosen, rejected []int) {
	q := ep.Query
	prompt = c.Prompt(ep.Shots, q.Prompt, q.Description)
	chosen = c.Completion(q.Chosen, q.Description)
	rd := q.RejectedDescription
	if rd == "" {
		rd = other
	}
	rejected = c.Completion(q.Rejected, rd)
	return prompt, chosen, rejected
}

// Positions is how many model positions scoring a prompt with its longest
// completion takes: every token but the last is an input. An example fits
// a model when Positions ≤ model.Positions().
func Positions(prompt []int, completions ...[]int) int {
	longest := 0
	for _, c := range completions {
		longest = max(longest, len(c))
	}
	return len(prompt) + longest - 1
}
