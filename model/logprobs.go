package model

import (
	"context"
	"fmt"
	"math"
)

// Continuation is a token sequence that continues a shared prefix; the
// log-probabilities of its tokens from index From on are summed (the
// earlier ones are context shared by several continuations, such as a
// question before its answers).
type Continuation struct {
	Tokens []int
	From   int
}

// logitBudget bounds the logits one Forward of ContinuationLogProbs
// returns (floats): 16M, 64 MB — 128 positions of a 128k vocabulary.
const logitBudget = 1 << 24

// ContinuationLogProbs returns each continuation's summed log-probability
// after prefix (at least one token, BOS), computed through the KV cache:
// the prefix once, then the continuations as batched multi-token steps,
// each reading the prefix's keys and values and returning the logits after
// every one of its tokens. It keeps no activations (Score keeps every one
// for Backward, and its attention grows with the square of the packed
// length), so it suits scoring many continuations of one long prefix; the
// sums agree with Score's to float rounding.
func (m *Model) ContinuationLogProbs(ctx context.Context, prefix []int, conts []Continuation) ([]float64, error) {
	if len(prefix) == 0 {
		return nil, fmt.Errorf("model: a scored continuation needs a prefix of at least one token (BOS)")
	}
	for i, c := range conts {
		if c.From < 0 || c.From >= len(c.Tokens) {
			return nil, fmt.Errorf("model: continuation %d scores from token %d of %d", i, c.From, len(c.Tokens))
		}
		if n := len(prefix) + len(c.Tokens) - 1; n > m.Positions() {
			return nil, fmt.Errorf("model: continuation %d needs %d positions, the model has %d", i, n, m.Positions())
		}
	}
	shared := m.NewCacheFor(len(prefix) - 1)
	defer shared.Release()
	if len(prefix) > 1 {
		if err := m.Forward([]Step{{Cache: shared, Tokens: prefix[:len(prefix)-1]}}); err != nil {
			return nil, err
		}
	}
	sums := make([]float64, len(conts))
	vocab := m.Config.Vocab
	for lo := 0; lo < len(conts); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// a chunk of continuations whose logits fit the budget (at least one)
		hi, rows := lo, 0
		for hi < len(conts) && (hi == lo || (rows+len(conts[hi].Tokens))*vocab <= logitBudget) {
			rows += len(conts[hi].Tokens)
			hi++
		}
		steps := make([]Step, hi-lo)
		for i := lo; i < hi; i++ {
			c := conts[i]
			cache := m.NewCacheFor(len(prefix) + len(c.Tokens) - 1)
			cache.CopyPrefix(shared, len(prefix)-1)
			// position t reads the token before the one it predicts
			in := append([]int{prefix[len(prefix)-1]}, c.Tokens[:len(c.Tokens)-1]...)
			steps[i-lo] = Step{Cache: cache, Tokens: in, AllLogits: make([]float32, len(in)*vocab)}
		}
		err := m.Forward(steps)
		for _, s := range steps {
			s.Cache.Release()
		}
		if err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			c, all := conts[i], steps[i-lo].AllLogits
			for t := c.From; t < len(c.Tokens); t++ {
				sums[i] += logProb(all[t*vocab:(t+1)*vocab], c.Tokens[t])
			}
		}
		lo = hi
	}
	return sums, nil
}

// logProb is log softmax(logits)[target], in float64.
func logProb(logits []float32, target int) float64 {
	top := float64(logits[0])
	for _, v := range logits {
		top = math.Max(top, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - top)
	}
	return float64(logits[target]) - top - math.Log(sum)
}
