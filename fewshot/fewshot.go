// Package fewshot turns few-shot episodes into the token sequences the model
// is trained on and generates from, and generated tokens back into text.
//
// For a base model a prompt is BOS followed by the encoding of
// episode.PromptFor's text; for a chat model (Codec.Chat) that text is the
// user turn of the model's chat template, rendered up to the assistant's
// start. A completion is the concatenation of its parts encoded one by one —
// the header (layout.Preferred), the response, and for COT the description
// part first — then EOS or the end-of-turn token. Encoding part by part (each with the tokenizer's dummy
// leading space) makes the header a fixed token sequence, so generation can
// force it and find the boundary between description and response exactly.
package fewshot

import (
	"fmt"
	"slices"
	"strings"

	"fspo/dataset"
	"fspo/episode"
	"fspo/tokenizer"
)

// Codec encodes and decodes one variant in one layout.
type Codec struct {
	Tok tokenizer.Codec
	// Chat, when set, makes every prompt a user turn and every completion
	// an assistant turn of the model's chat template.
	Chat    *Chat
	Variant episode.Variant
	Layout  episode.Layout
}

func (c Codec) enc(s string) []int { return c.Tok.Encode(s, false) }

// Prompt returns the prompt's tokens: BOS and the prompt text for a base
// model, the rendered user turn up to the assistant's start for a chat model.
func (c Codec) Prompt(shots []dataset.Record, question, description string) ([]int, error) {
	text := episode.PromptFor(c.Variant, c.Layout, shots, question, description)
	if c.Chat != nil {
		return c.Chat.prompt(c.Tok, text)
	}
	return c.Tok.Encode(text, true), nil
}

// Completion returns the tokens of a completion, the end token (EOS, or
// a chat model's end of turn) last.
func (c Codec) Completion(response, description string) []int {
	out := c.Header()
	if c.Variant == episode.COT {
		out = append(out, c.DescriptionPart(description)...)
	}
	out = append(out, c.enc(response)...)
	return append(out, c.End())
}

// End is the token that ends a completion.
func (c Codec) End() int {
	if c.Chat != nil {
		return c.Chat.End
	}
	return c.Tok.EOS()
}

// Stop lists the tokens that end generation: a chat model's end-of-turn
// and end-of-sequence tokens; for a base model EOS, and BOS when
// stopAtBOS (llama2.c's stories separate documents with BOS).
func (c Codec) Stop(stopAtBOS bool) []int {
	if c.Chat != nil {
		return c.Chat.Stop
	}
	stop := []int{c.Tok.EOS()}
	if stopAtBOS && c.Tok.BOS() >= 0 {
		stop = append(stop, c.Tok.BOS())
	}
	return stop
}

// DescriptionPart is the part of a COT completion after the header that
// states the description: its text, then the separator before the response.
func (c Codec) DescriptionPart(description string) []int {
	return append(c.enc(description), c.separator()...)
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
// A chat model's header starts with what its template puts at the start of
// every assistant turn (Chat.Lead).
func (c Codec) Header() []int {
	var out []int
	if c.Chat != nil {
		out = slices.Clone(c.Chat.Lead)
	}
	if c.Variant == episode.COT {
		return append(out, c.enc(c.Layout.Description)...)
	}
	return append(out, c.enc(c.Layout.Preferred)...)
}

// Text decodes tokens produced after a header, dropping the tokenizer's
// dummy leading space and anything from a stop token on.
func (c Codec) Text(toks []int) string {
	stop := c.Stop(true)
	for i, t := range toks {
		if slices.Contains(stop, t) {
			toks = toks[:i]
			break
		}
	}
	return strings.TrimPrefix(c.Tok.DecodeIDs(toks, c.Chat != nil), " ")
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
func (c Codec) Encode(ep episode.Episode, other string) (prompt, chosen, rejected []int, err error) {
	q := ep.Query
	if prompt, err = c.Prompt(ep.Shots, q.Prompt, q.Description); err != nil {
		return nil, nil, nil, err
	}
	chosen = c.Completion(q.Chosen, q.Description)
	rd := q.RejectedDescription
	if rd == "" {
		rd = other
	}
	rejected = c.Completion(q.Rejected, rd)
	return prompt, chosen, rejected, nil
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

// LongestResponse is the token count of the longest chosen or rejected
// response among the records: the answer cap that generation takes from
// the training data (0 without records).
func LongestResponse(tok tokenizer.Codec, byUser map[string][]dataset.Record) int {
	n := 0
	for _, recs := range byUser {
		for _, r := range recs {
			n = max(n, len(tok.Encode(r.Chosen, false)), len(tok.Encode(r.Rejected, false)))
		}
	}
	return n
}
