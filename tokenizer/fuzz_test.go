package tokenizer

import (
	"os"
	"slices"
	"strings"
	"testing"

	"fspo/internal/testenv"
)

// FuzzParse feeds arbitrary bytes to Parse: it must return a tokenizer or an
// error, never panic, and a parsed tokenizer must encode and decode.
func FuzzParse(f *testing.F) {
	f.Add(byteVocab().bytes())
	f.Add([]byte{})
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	withMerges := byteVocab()
	withMerges.add(-1, " ")
	withMerges.add(-2, "a")
	withMerges.add(-3, " a")
	withMerges.add(-4, "")
	withMerges.add(float32(-1e11), "aa")
	f.Add(withMerges.bytes())
	stories, err := os.ReadFile(testenv.Model(f).Tokenizer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stories)
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			if tok != nil {
				t.Fatalf("Parse returned both a tokenizer and %v", err)
			}
			return
		}
		if tok.VocabSize() < MinVocab {
			t.Fatalf("VocabSize %d < %d without an error", tok.VocabSize(), MinVocab)
		}
		for _, text := range []string{"a b\n\xff é", "aaaa ab ba", string(data[:min(len(data), 64)])} {
			ids := tok.Encode(text, true, false)
			if err := tok.CheckIDs(ids); err != nil {
				t.Fatalf("Encode gave an id outside the vocabulary: %v", err)
			}
			if want := naiveEncode(tok, text); !slices.Equal(ids, want) {
				t.Fatalf("Encode(%q) = %v, quadratic reference %v", text, ids, want)
			}
			_ = tok.DecodeAll(ids)
		}
		for id := 0; id < tok.VocabSize(); id++ {
			_ = tok.DecodePrintable(BOS, id)
		}
	})
}

// FuzzEncode checks the round trip DecodeAll(Encode(s)) == s on the
// stories260K vocabulary for arbitrary strings, including invalid UTF-8, and
// that Encode agrees with a direct transcription of run.c's quadratic merge.
func FuzzEncode(f *testing.F) {
	tok := load(f)
	for _, s := range roundTripTexts {
		f.Add(s)
	}
	f.Add("")
	f.Add("a")
	f.Add(strings.Repeat("ab", 40))
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true, false)
		if err := tok.CheckIDs(ids); err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if got := tok.DecodeAll(ids); got != s {
			t.Fatalf("DecodeAll(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
		if len(s) <= 200 {
			if want := naiveEncode(tok, s); !slices.Equal(ids, want) {
				t.Fatalf("Encode(%q) = %v, quadratic reference %v", s, ids, want)
			}
		}
		if max := 2 + len(s); len(ids) > max {
			t.Fatalf("Encode(%q): %d tokens, more than BOS, the prefix and one per byte (%d)", s, len(ids), max)
		}
	})
}

// naiveEncode transcribes run.c's encode literally: after the per-character
// lookup, rescan all pairs, concatenate their pieces, look the string up and
// merge the first pair with the strictly highest score.
func naiveEncode(t *Tokenizer, text string) []int {
	toks := []int{BOS}
	if text != "" {
		if t.spaceID >= 0 {
			toks = append(toks, t.spaceID)
		} else {
			toks = append(toks, ' '+3)
		}
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.ids[text[i:j]]; ok {
			toks = append(toks, id)
		} else {
			for k := i; k < j; k++ {
				toks = append(toks, int(text[k])+3)
			}
		}
		i = j
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(toks); i++ {
			id, ok := t.ids[t.pieces[toks[i]]+t.pieces[toks[i+1]]]
			if ok && t.scores[id] > best {
				best, bestID, bestIdx = t.scores[id], id, i
			}
		}
		if bestIdx < 0 {
			return toks
		}
		toks[bestIdx] = bestID
		toks = slices.Delete(toks, bestIdx+1, bestIdx+2)
	}
}

// TestSyntheticVocab checks ties (leftmost pair first), duplicate pieces
// (lowest id), empty pieces and the -1e10 score floor against the quadratic
// reference on small made-up vocabularies.
func TestSyntheticVocab(t *testing.T) {
	f := byteVocab()
	f.add(-1, " ")     // 259
	f.add(-1, "a")     // 260
	f.add(-1, "b")     // 261
	f.add(-2, "ab")    // 262
	f.add(-2, "ba")    // 263: ties with "ab"
	f.add(-3, "aba")   // 264
	f.add(-2, "ab")    // 265: duplicate of 262
	f.add(-1e11, "bb") // 266: below the floor, never merged
	f.add(-5, " a")    // 267
	tok, err := Parse(f.bytes())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text string
		want []int
	}{
		{"ab", []int{BOS, 259, 262}},
		{"bab", []int{BOS, 259, 263, 261}}, // "ba" and "ab" tie: leftmost wins
		{"abab", []int{BOS, 259, 262, 262}},
		{"bb", []int{BOS, 259, 261, 261}},
		{"aba", []int{BOS, 259, 264}},
		{"a", []int{BOS, 267}},
		{"c", []int{BOS, 259, 'c' + 3}},
	}
	for _, c := range cases {
		if got := tok.Encode(c.text, true, false); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	// Every string over {a, b, ' '} up to length 7 agrees with the reference.
	alphabet := []byte("ab ")
	var walk func(prefix []byte)
	walk = func(prefix []byte) {
		s := string(prefix)
		if got, want := tok.Encode(s, true, false), naiveEncode(tok, s); !slices.Equal(got, want) {
			t.Fatalf("Encode(%q) = %v, quadratic reference %v", s, got, want)
		}
		if len(prefix) == 7 {
			return
		}
		for _, c := range alphabet {
			walk(append(prefix, c))
		}
	}
	walk(nil)

	// Many empty pieces must not make Parse slow (pairs are keyed by the
	// lowest id of each piece), and "" merges with anything into itself.
	g := byteVocab()
	for range 20000 {
		g.add(-1, "")
	}
	tok, err = Parse(g.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.Encode("hi", true, false), naiveEncode(tok, "hi"); !slices.Equal(got, want) {
		t.Errorf("empty pieces: Encode = %v, reference %v", got, want)
	}
}

func TestNaiveAgrees(t *testing.T) {
	tok := load(t)
	for _, s := range roundTripTexts {
		if got, want := tok.Encode(s, true, false), naiveEncode(tok, s); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, quadratic reference %v", s, got, want)
		}
	}
}

// story is about 2,000 characters of TinyStories-like text.
var story = strings.Repeat("Once upon a time, there was a little girl named Lily. She loved to play in the park with her big red ball. One day, she saw a cat under a tree. ", 14)[:2000]

func BenchmarkEncode2000(b *testing.B) {
	tok := load(b)
	b.SetBytes(int64(len(story)))
	for b.Loop() {
		tok.Encode(story, true, false)
	}
}

func BenchmarkEncode2000Naive(b *testing.B) {
	tok := load(b)
	b.SetBytes(int64(len(story)))
	for b.Loop() {
		naiveEncode(tok, story)
	}
}

func BenchmarkDecodeAll(b *testing.B) {
	tok := load(b)
	ids := tok.Encode(story, true, false)
	for b.Loop() {
		tok.DecodeAll(ids)
	}
}
