// Command probe measures whether a trained model reads the few-shot context:
// it compares chosen-minus-rejected log-probs of held-out queries under the
// user's own shots and under another user's shots.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"path/filepath"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/tokenizer"
)

func main() {
	data := flag.String("data", "", "data dir")
	mpath := flag.String("model", "", "model file")
	tokPath := flag.String("tok", "/work/shared/models/stories260K/tok512.bin", "tokenizer")
	users := flag.String("users", "test", "test or train")
	variant := flag.String("variant", "plain", "prompt variant: plain or preferred-only (match training)")
	shots := flag.Int("shots", 4, "N: shots per episode (match training)")
	flag.Parse()
	m, err := model.Load(*mpath)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		log.Fatal(err)
	}
	man, err := dataset.ReadManifest(*data)
	if err != nil {
		log.Fatal(err)
	}
	recs, err := dataset.ReadAll(filepath.Join(*data, "preferences.jsonl"))
	if err != nil {
		log.Fatal(err)
	}
	keep := map[string]bool{}
	list := man.TestUsers
	if *users == "train" {
		list = man.TrainUsers[:40]
	}
	for _, u := range list {
		keep[u] = true
	}
	var sel []dataset.Record
	for _, r := range recs {
		if keep[r.User] {
			sel = append(sel, r)
		}
	}
	v, err := episode.ParseVariant(*variant)
	if err != nil {
		log.Fatal(err)
	}
	eps := episode.Build(dataset.GroupByUser(sel), *shots, 1, 7)
	c := fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: v, Layout: episode.Compact}
	var own, other, diff, diff2 float64
	var nOwn, nOther int
	for i, ep := range eps {
		o := eps[(i+len(eps)/2)%len(eps)]
		var d1 float64
		for k, shots := range [][]dataset.Record{ep.Shots, o.Shots} {
			p, err := c.Prompt(shots, ep.Query.Prompt, "")
			if err != nil {
				log.Fatal(err)
			}
			ch := c.Completion(ep.Query.Chosen, "")
			rj := c.Completion(ep.Query.Rejected, "")
			pass, err := m.Score([]model.Example{{Prompt: p, Completions: [][]int{ch, rj}}}, nil)
			if err != nil {
				log.Fatal(err)
			}
			d := pass.Sum(0, 0) - pass.Sum(0, 1)
			if k == 0 {
				d1 = d
				own += d
				diff += d
				if d > 0 {
					nOwn++
				}
			} else {
				other += d
				diff -= d
				if d > 0 {
					nOther++
				}
				diff2 += (d1 - d) * (d1 - d)
			}
		}
	}
	n := float64(len(eps))
	se := math.Sqrt(math.Max(diff2/n-(diff/n)*(diff/n), 0) / n)
	fmt.Printf("%d episodes: acc(own shots) %.3f, acc(other user's shots) %.3f, mean logp(c)-logp(r): own %.3f other %.3f, own-other %.3f ± %.3f\n",
		len(eps), float64(nOwn)/n, float64(nOther)/n, own/n, other/n, diff/n, se)
}
