package model

import (
	"fmt"
)

// Example is one prompt followed by one or more completions to score. Every
// completion continues the prompt on its own; the prompt is processed once
// for all of them (the FSPO case: a long few-shot prompt, then the chosen and
// the rejected response).
type Example struct {
	Prompt      []int   // at least one token (BOS)
	Completions [][]int // each at least one token
}

// The packed row of an Example with prompt p (length P) and completions
// c¹…cᵏ: the shared part p[0:P-1] first, then for each completion a segment
// [p[P-1], c[0], …, c[n-2]] whose outputs predict c[0…n-1]. A segment's
// positions continue from P-1, and its tokens see the shared part and the
// earlier tokens of their own segment only, so each completion is scored
// exactly as in a separate sequence prompt+completion.
type packed struct {
	B, T    int
	Tokens  []int32 // (B,T)
	Pos     []int32 // (B,T) RoPE position
	Lo      []int32 // (B,T) token t sees keys [0, Lo) ...
	Seg     []int32 // (B,T) ... and [Seg, t]
	Targets []int32 // (B,T) token predicted at t, or -1
	// where each completion's scored positions are: spans[i][j] = row offset
	// (b*T + first) of completion j of example i; its length is len(c).
	spans   [][]int
	spanLen [][]int
}

// RowLen is how many positions an Example occupies when packed.
func (e Example) RowLen() int {
	n := len(e.Prompt) - 1
	for _, c := range e.Completions {
		n += len(c)
	}
	return n
}

func (m *Model) pack(exs []Example, pk *packed) error {
	if len(exs) == 0 {
		return fmt.Errorf("no examples")
	}
	T := 0
	for i, e := range exs {
		if len(e.Prompt) == 0 {
			return fmt.Errorf("example %d: empty prompt (it needs at least BOS)", i)
		}
		if len(e.Completions) == 0 {
			return fmt.Errorf("example %d: no completion to score", i)
		}
		longest := 0
		for j, c := range e.Completions {
			if len(c) == 0 {
				return fmt.Errorf("example %d: completion %d is empty", i, j)
			}
			longest = max(longest, len(c))
		}
		if n := len(e.Prompt) + longest - 1; n > m.Positions() {
			return fmt.Errorf("example %d: prompt of %d tokens and completion of %d need %d positions, the model has %d", i, len(e.Prompt), longest, n+1, m.Positions())
		}
		for _, seq := range append([][]int{e.Prompt}, e.Completions...) {
			for _, t := range seq {
				if t < 0 || t >= m.Config.Vocab {
					return fmt.Errorf("example %d: token %d outside the vocabulary of %d", i, t, m.Config.Vocab)
				}
			}
		}
		T = max(T, e.RowLen())
	}
	B := len(exs)
	pk.B, pk.T = B, T
	n := B * T
	pk.Tokens = growInt(pk.Tokens, n)
	pk.Pos = growInt(pk.Pos, n)
	pk.Lo = growInt(pk.Lo, n)
	pk.Seg = growInt(pk.Seg, n)
	pk.Targets = growInt(pk.Targets, n)
	pk.spans, pk.spanLen = pk.spans[:0], pk.spanLen[:0]
	for b, e := range exs {
		row := b * T
		P := len(e.Prompt)
		t := 0
		for ; t < P-1; t++ {
			pk.Tokens[row+t], pk.Pos[row+t], pk.Lo[row+t], pk.Seg[row+t] = int32(e.Prompt[t]), int32(t), 0, 0
			pk.Targets[row+t] = -1
		}
		spans, lens := make([]int, len(e.Completions)), make([]int, len(e.Completions))
		for j, c := range e.Completions {
			start := t
			spans[j], lens[j] = row+start, len(c)
			for k := range c {
				in := e.Prompt[P-1]
				if k > 0 {
					in = c[k-1]
				}
				pk.Tokens[row+t], pk.Pos[row+t] = int32(in), int32(P-1+k)
				pk.Lo[row+t], pk.Seg[row+t], pk.Targets[row+t] = int32(P-1), int32(start), int32(c[k])
				t++
			}
		}
		pk.spans, pk.spanLen = append(pk.spans, spans), append(pk.spanLen, lens)
		for ; t < T; t++ { // padding: sees only itself, predicts nothing
			pk.Tokens[row+t], pk.Pos[row+t], pk.Lo[row+t], pk.Seg[row+t], pk.Targets[row+t] = 0, 0, 0, int32(t), -1
		}
	}
	return nil
}

func growInt(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}
