// Package servetest has a fake serve.Engine for tests and demos: fast,
// deterministic, and its answers say what context they were given.
package servetest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"fspo/serve"
)

// Engine is a fake model. Each method calls its function field when set,
// or a deterministic default otherwise:
//   - Answer: "[NAME] personalized with N shots (last: CHOSEN): answer to QUESTION"
//     ("[NAME] base answer to QUESTION" without Personalize), streamed word by word;
//     Description "likes: CHOSEN of the last shot" when personalized with shots.
//   - Pair: two answers tagged "A" and "B" with the seed.
//   - Describe: "likes: CHOSEN of the last shot", or "" without shots.
type Engine struct {
	NameValue    string
	AnswerFunc   func(ctx context.Context, req serve.AnswerRequest) (serve.Answer, error)
	PairFunc     func(ctx context.Context, question string, seed uint64) (string, string, error)
	DescribeFunc func(ctx context.Context, shots []serve.Shot) (string, error)

	// Calls counts Answer calls.
	Calls atomic.Int64
}

var _ serve.Engine = (*Engine)(nil)

// New returns a fake engine with the defaults.
func New(name string) *Engine { return &Engine{NameValue: name} }

// Name implements serve.Engine.
func (e *Engine) Name() string { return e.NameValue }

// Answer implements serve.Engine.
func (e *Engine) Answer(ctx context.Context, req serve.AnswerRequest) (serve.Answer, error) {
	e.Calls.Add(1)
	if e.AnswerFunc != nil {
		return e.AnswerFunc(ctx, req)
	}
	var text, desc string
	if req.Personalize {
		last := "-"
		if n := len(req.Shots); n > 0 {
			last = req.Shots[n-1].Chosen
			desc = "likes: " + last
		}
		text = fmt.Sprintf("[%s] personalized with %d shots (last: %s): answer to %s", e.NameValue, len(req.Shots), last, req.Question)
	} else {
		text = fmt.Sprintf("[%s] base answer to %s", e.NameValue, req.Question)
	}
	words := strings.SplitAfter(text, " ")
	finish := "stop"
	if req.MaxTokens > 0 && len(words) > req.MaxTokens {
		words, finish = words[:req.MaxTokens], "length"
		text = strings.Join(words, "")
	}
	stops := serve.NewStopScanner(req.Stop)
	n := 0
	for _, w := range words {
		if err := ctx.Err(); err != nil {
			return serve.Answer{}, err
		}
		n++
		piece, hit := stops.Push(w)
		if req.Stream != nil && piece != "" {
			if err := req.Stream(piece); err != nil {
				return serve.Answer{}, err
			}
		}
		if hit {
			break
		}
	}
	if tail := stops.Flush(); tail != "" && req.Stream != nil {
		if err := req.Stream(tail); err != nil {
			return serve.Answer{}, err
		}
	}
	if stops.Hit() {
		text, finish, words = stops.Text(), "stop", words[:n]
	}
	return serve.Answer{Text: text, Description: desc, PromptTokens: len(strings.Fields(req.Question)) + 10*len(req.Shots),
		CompletionTokens: len(words), FinishReason: finish, Shots: len(req.Shots)}, nil
}

// Pair implements serve.Engine.
func (e *Engine) Pair(ctx context.Context, question string, seed uint64) (string, string, error) {
	if e.PairFunc != nil {
		return e.PairFunc(ctx, question, seed)
	}
	return fmt.Sprintf("A: a gentle answer to %s (%d)", question, seed%1000),
		fmt.Sprintf("B: a bold answer to %s (%d)", question, seed%1000), nil
}

// Describe implements serve.Engine.
func (e *Engine) Describe(ctx context.Context, shots []serve.Shot) (string, error) {
	if e.DescribeFunc != nil {
		return e.DescribeFunc(ctx, shots)
	}
	if len(shots) == 0 {
		return "", nil
	}
	return "likes: " + shots[len(shots)-1].Chosen, nil
}
