package eval

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/model"
)

// shotFits scores every description against every shot with one shared
// context per shot; each description's fit equals the sum, shot by shot, of
// log p(chosen) − log p(rejected) after that description alone (its own
// model.ContinuationLogProbs call here), to float32 rounding. A description too long for the
// model skips the shots it does not fit.
func TestShotFitsScoresEachDescription(t *testing.T) {
	m, c := storiesCodec(t, episode.COT)
	shots := []dataset.Record{
		{Prompt: "Once upon a time", Chosen: "Tom saw a big dog.", Rejected: "Lily ran to the park."},
		{Prompt: "One day", Chosen: "The cat was happy.", Rejected: "The truck was red."},
		{Prompt: "There was a girl", Chosen: "She liked the sun.", Rejected: "He had a ball."},
	}
	descs := []string{strings.Repeat("Loves the big red ball. ", 60), "Loves dogs.", "Hates trucks. Loves cats.", ""}
	got, err := shotFits(context.Background(), m, c, shots, descs)
	if err != nil {
		t.Fatal(err)
	}
	skip := len(c.Header()) + len(c.DescriptionPart(""))
	for d, desc := range descs {
		want, fitted := 0.0, 0
		part := c.DescriptionPart(desc)
		for i, sh := range shots {
			others := append(slices.Clip(shots[:i]), shots[i+1:]...)
			p, err := c.Prompt(others, sh.Prompt, "")
			if err != nil {
				t.Fatal(err)
			}
			prefix := append(p, c.Header()...)
			ch, rj := c.Completion(sh.Chosen, "")[skip:], c.Completion(sh.Rejected, "")[skip:]
			if len(prefix)+len(part)+max(len(ch), len(rj)) > m.Positions() {
				continue
			}
			lp, err := m.ContinuationLogProbs(context.Background(), prefix, []model.Continuation{
				{Tokens: append(slices.Clip(part), ch...), From: len(part)},
				{Tokens: append(slices.Clip(part), rj...), From: len(part)}})
			if err != nil {
				t.Fatal(err)
			}
			want += lp[0] - lp[1]
			fitted++
		}
		if math.Abs(got[d]-want) > 1e-4*max(1, math.Abs(want)) { // batched rows may round differently
			t.Errorf("description %d: fit %v, scored alone %v", d, got[d], want)
		}
		if (d == 0) != (fitted == 0) {
			t.Errorf("description %d (%d tokens): %d of %d shots fitted; only the long one should fit none", d, len(part), fitted, len(shots))
		}
	}
}
