// Command margins splits a preference-trained model's log-ratio margin
//
//	h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]
//
// over a data folder's pairs into the part earned by a COT completion's
// description (up to and including the separator before the response) and
// the part earned by the response. For a plain model all of h is the
// response's.
//
//	go run ./x/margins --data DIR --policy RUN/model.fspo --ref INIT/model.fspo --variant cot [--users train|test]
package main

import (
	"flag"
	"fmt"
	"log"
	"path/filepath"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/tokenizer"
	"fspo/train"
)

func main() {
	data := flag.String("data", "", "data folder (preferences.jsonl, manifest.json)")
	policy := flag.String("policy", "", "the trained model (a run's model.fspo)")
	ref := flag.String("ref", "", "its reference model (the run's initial model)")
	variant := flag.String("variant", "cot", "prompt variant of the training: cot or plain")
	users := flag.String("users", "train", "whose pairs: train or test")
	shots := flag.Int("shots", 4, "shots per episode, as in training")
	pairs := flag.Int("pairs", 200, "pairs to score at most")
	flag.Parse()
	if *data == "" || *policy == "" || *ref == "" {
		log.Fatal("margins: --data, --policy and --ref are required")
	}
	v, err := episode.ParseVariant(*variant)
	if err != nil {
		log.Fatal(err)
	}
	P, err := model.Load(*policy)
	if err != nil {
		log.Fatal(err)
	}
	R, err := model.Load(*ref)
	if err != nil {
		log.Fatal(err)
	}
	// a run folder holds the tokenizer it was trained with
	toks, _ := filepath.Glob(filepath.Join(filepath.Dir(*policy), "tok*.bin"))
	if len(toks) != 1 {
		log.Fatalf("margins: want one tok*.bin beside %s, found %v", *policy, toks)
	}
	tok, err := tokenizer.Load(toks[0])
	if err != nil {
		log.Fatal(err)
	}
	codec := fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: v, Layout: episode.Compact}
	items, _, err := train.Prepare(train.Data{Dir: *data, Variant: v, Layout: episode.Compact, Shots: *shots, Passes: 1,
		Seed: 1, Users: *users, MaxDropped: 0.05}, codec, P.Positions())
	if err != nil {
		log.Fatal(err)
	}
	items = items[:min(len(items), *pairs)]
	// descPart is a completion's description and separator; empty for plain
	descPart := func(c []int) []int {
		if v != episode.COT {
			return nil
		}
		end := codec.DescriptionEnd(c)
		if end < 0 {
			log.Fatal("margins: a COT completion without the separator")
		}
		return c[:end]
	}
	// h of each pair under completions cut by part
	h := func(part func([]int) []int) []float64 {
		exs := make([]model.Example, len(items))
		for i, it := range items {
			exs[i] = model.Example{Prompt: it.Prompt, Completions: [][]int{part(it.Chosen), part(it.Rejected)}}
		}
		out := make([]float64, len(items))
		var pass *model.Pass
		for lo := 0; lo < len(exs); lo += 4 {
			hi := min(lo+4, len(exs))
			sums := make([][2]float64, hi-lo)
			for _, m := range []struct {
				m    *model.Model
				sign float64
			}{{P, 1}, {R, -1}} {
				if pass, err = m.m.Score(exs[lo:hi], pass); err != nil {
					log.Fatal(err)
				}
				for k := range sums {
					sums[k][0] += m.sign * pass.Sum(k, 0)
					sums[k][1] += m.sign * pass.Sum(k, 1)
				}
			}
			for k := range sums {
				out[lo+k] = sums[k][0] - sums[k][1]
			}
		}
		return out
	}
	total := h(func(c []int) []int { return c })
	desc := make([]float64, len(items))
	if v == episode.COT {
		desc = h(descPart)
	}
	var mt, md float64
	var pt, pd, pr int
	for i := range items {
		mt += total[i]
		md += desc[i]
		pt += b2i(total[i] > 0)
		pd += b2i(desc[i] > 0)
		pr += b2i(total[i]-desc[i] > 0)
	}
	n := float64(len(items))
	fmt.Printf("%s users, %d pairs: mean h %.2f nats = description %.2f + response %.2f; h > 0 on %.0f%% (description part %.0f%%, response part %.0f%%)\n",
		*users, len(items), mt/n, md/n, (mt-md)/n, 100*float64(pt)/n, 100*float64(pd)/n, 100*float64(pr)/n)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
