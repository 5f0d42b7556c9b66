// Command vocabmeasure measures which story attributes the stories260K model
// writes on its own and how well each responds to steering, and writes the
// table (category, value, free %, steered %) that the vocabulary of
// synth/stories is chosen by and tested against (see ../../README.md):
//
//	go generate ./synth/stories   # go run ./internal/vocabmeasure -n 2000 -out testdata/vocab.tsv
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"fspo/atomicfile"
	"fspo/model"
	"fspo/modelpath"
	"fspo/tokenizer"
)

var openings = []string{
	"Once upon a time,", "One day,", "One sunny day,", "Once upon a time, in a small town,",
	"It was a rainy day.", "Lily woke up early.", "Tom went outside to play.", "Mom said it was time to go.",
	"There was a big tree.", "At night,", "After school,", "Ben had a new toy.",
}

// categories lists the candidate values per attribute, measured below.
var categories = map[string][]string{
	"name":   {"lily", "tom", "tim", "ben", "sue", "max", "anna", "sam", "mia", "jack", "lucy", "sara", "timmy", "bob", "amy", "mark", "jane", "kitty", "spot", "lily's"},
	"animal": {"cat", "dog", "bird", "bunny", "rabbit", "fish", "bear", "duck", "frog", "mouse", "lion", "horse", "puppy", "kitten", "cow", "pig", "monkey", "owl", "bug", "elephant"},
	"place":  {"park", "garden", "forest", "house", "sea", "beach", "sky", "school", "river", "pond", "farm", "yard", "woods", "room", "kitchen", "shop", "store", "zoo", "car", "hill"},
	"object": {"ball", "toy", "tree", "flower", "box", "car", "cake", "book", "boat", "kite", "doll", "hat", "rock", "stick", "apple", "train", "balloon", "truck", "candy", "shell"},
	"mood":   {"happy", "sad", "scared", "angry", "excited", "proud", "sorry", "surprised", "brave", "kind", "curious", "tired", "silly", "mad", "worried", "lonely", "grumpy", "shy", "glad", "upset"},
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '\'')
	})
}

func main() {
	n := flag.Int("n", 2000, "continuations to sample (free) ")
	steerN := flag.Int("steer", 24, "steered continuations per value")
	tokens := flag.Int("tokens", 48, "tokens per continuation")
	out := flag.String("out", "", "also write the table as TSV to this file")
	flag.Parse()
	var table strings.Builder
	table.WriteString("category\tvalue\tfree_pct\tsteered_pct\n")
	paths, err := modelpath.FindDefault()
	if err != nil {
		log.Fatal(err)
	}
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		log.Fatal(err)
	}
	g := sampler{m: m, tok: tok, tokens: *tokens}
	texts, all := g.free(*n)
	g.steered(&table, texts, all, *steerN)
	printTop(all, len(texts))
	if *out != "" {
		if err := atomicfile.WriteBytes(*out, []byte(table.String())); err != nil {
			log.Fatal(err)
		}
	}
}

// sampler continues openings with stories260K.
type sampler struct {
	m      *model.Model
	tok    *tokenizer.Tokenizer
	tokens int
}

func (g sampler) gen(prompts []string, seed uint64) []string {
	ids := make([][]int, len(prompts))
	for i, p := range prompts {
		ids[i] = g.tok.Encode(p, true, false)
	}
	out, err := g.m.GenerateBatch(context.Background(), ids, model.GenOptions{MaxTokens: g.tokens, Temperature: 0.9, TopP: 0.95, Seed: seed, StopAtBOS: true}, nil)
	if err != nil {
		log.Fatal(err)
	}
	texts := make([]string, len(out))
	for i, o := range out {
		texts[i] = g.tok.DecodeAll(o.Tokens)
	}
	return texts
}

// free samples n continuations of the openings and counts, per word, the
// stories that contain it.
func (g sampler) free(n int) ([]string, map[string]int) {
	start := time.Now()
	var prompts []string
	for i := 0; i < n; i++ {
		prompts = append(prompts, openings[i%len(openings)])
	}
	var texts []string
	for i := 0; i < len(prompts); i += 128 {
		texts = append(texts, g.gen(prompts[i:min(i+128, len(prompts))], uint64(i+1))...)
	}
	el := time.Since(start)
	fmt.Printf("free: %d continuations of %d tokens in %v (%.0f tok/s)\n", len(texts), g.tokens, el, float64(len(texts)*g.tokens)/el.Seconds())
	all := map[string]int{}
	for _, t := range texts {
		seen := map[string]bool{}
		for _, w := range words(t) {
			if !seen[w] {
				seen[w] = true
				all[w]++
			}
		}
	}
	return texts, all
}

// steered prints and tabulates each value's free share and how often a
// continuation steered with it mentions it again.
func (g sampler) steered(table *strings.Builder, texts []string, all map[string]int, steerN int) {
	cats := slices.Sorted(maps.Keys(categories))
	for _, c := range cats {
		fmt.Printf("\n[%s] value: free%% (stories containing it) | steered re-mention%%\n", c)
		for _, v := range categories[c] {
			// 2. Steering: force the value into the opening and count how
			// often the continuation mentions it again.
			var sp []string
			for i := 0; i < steerN; i++ {
				sp = append(sp, steer(c, v, i))
			}
			st := g.gen(sp, 7)
			re := 0
			for _, t := range st {
				for _, w := range words(t) {
					if w == v || w == v+"s" {
						re++
						break
					}
				}
			}
			free, steered := 100*float64(all[v])/float64(len(texts)), 100*float64(re)/float64(len(st))
			fmt.Printf("  %-10s %5.1f%% | %5.1f%%\n", v, free, steered)
			fmt.Fprintf(table, "%s\t%s\t%.1f\t%.1f\n", c, v, free, steered)
		}
	}
}

// printTop prints the 200 most common words by share of stories.
func printTop(all map[string]int, stories int) {
	type kv struct {
		w string
		n int
	}
	var top []kv
	for w, c := range all {
		top = append(top, kv{w, c})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || top[i].n == top[j].n && top[i].w < top[j].w })
	fmt.Printf("\ntop words (fraction of stories):\n")
	for _, e := range top[:min(200, len(top))] {
		fmt.Printf("%s:%.0f%% ", e.w, 100*float64(e.n)/float64(stories))
	}
	fmt.Println()
}

func steer(cat, v string, i int) string {
	open := []string{"Once upon a time,", "One day,"}[i%2]
	switch cat {
	case "name":
		return open + " there was a little kid named " + strings.ToUpper(v[:1]) + v[1:] + "."
	case "animal":
		return open + " there was a " + v + "."
	case "place":
		return open + " they went to the " + v + "."
	case "object":
		return open + " there was a " + v + "."
	default:
		return open + " there was a little girl. She was very " + v + "."
	}
}
