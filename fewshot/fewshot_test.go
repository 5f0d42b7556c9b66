package fewshot

import (
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/tokenizer"
)

func loadTok(t *testing.T) *tokenizer.Tokenizer {
	tok, err := tokenizer.Load(testenv.Model(t).Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	tok := loadTok(t)
	for _, v := range []episode.Variant{episode.Plain, episode.COT, episode.Oracle} {
		for _, l := range []episode.Layout{episode.Compact, episode.Paper} {
			c := Codec{Tok: tokenizer.Llama2C(tok), Variant: v, Layout: l}
			resp := "Once upon a time, there was a dog named Max.\nHe was happy."
			desc := "Likes dogs and happy endings; dislikes the rain."
			comp := c.Completion(resp, desc)
			if comp[len(comp)-1] != model.EOS {
				t.Fatalf("%s/%s: completion does not end with EOS", v, l.Name)
			}
			head := c.Header()
			for i := range head {
				if comp[i] != head[i] {
					t.Fatalf("%s/%s: completion does not start with the header tokens", v, l.Name)
				}
			}
			gotDesc, gotResp, err := c.Parse(comp[len(head):])
			if err != nil {
				t.Fatal(err)
			}
			if gotResp != resp {
				t.Errorf("%s/%s: response %q, want %q", v, l.Name, gotResp, resp)
			}
			if v == episode.COT && gotDesc != desc {
				t.Errorf("%s/%s: description %q, want %q", v, l.Name, gotDesc, desc)
			}
		}
	}
}

func TestEncodeEpisode(t *testing.T) {
	tok := loadTok(t)
	rec := func(p, c, r string) dataset.Record {
		return dataset.Record{User: "u", Prompt: p, Chosen: c, Rejected: r, Description: "likes cats", RejectedDescription: "likes dogs"}
	}
	ep := episode.Episode{User: "u", Shots: []dataset.Record{rec("One day,", "a cat sat.", "a dog ran.")}, Query: rec("Once upon a time,", "the cat slept.", "the dog barked.")}
	c := Codec{Tok: tokenizer.Llama2C(tok), Variant: episode.COT, Layout: episode.Compact}
	p, ch, rj, err := c.Encode(ep, "")
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != model.BOS {
		t.Fatal("prompt does not start with BOS")
	}
	d, r, err := c.Parse(ch[len(c.Header()):])
	if err != nil || d != "likes cats" || r != "the cat slept." {
		t.Errorf("chosen parsed as %q / %q (%v)", d, r, err)
	}
	d, r, err = c.Parse(rj[len(c.Header()):])
	if err != nil || d != "likes dogs" || r != "the dog barked." {
		t.Errorf("rejected parsed as %q / %q (%v)", d, r, err)
	}
}

// TestDescriptionEnd: the description part of a COT completion ends just
// past the separator, is not found before the separator is complete, and
// the first separator counts.
func TestDescriptionEnd(t *testing.T) {
	c := Codec{Tok: tokenizer.Llama2C(loadTok(t)), Variant: episode.COT, Layout: episode.Compact}
	desc := c.Completion("", "Loves cats.")[len(c.Header()):] // description, separator, EOS
	desc = desc[:len(desc)-1]
	comp := c.Completion("A cat sat.", "Loves cats.")[len(c.Header()):]
	if got := c.DescriptionEnd(comp); got != len(desc) {
		t.Errorf("DescriptionEnd = %d, want %d (description and separator)", got, len(desc))
	}
	if got := c.DescriptionEnd(desc[:len(desc)-1]); got != -1 {
		t.Errorf("DescriptionEnd of a cut separator = %d, want -1", got)
	}
	twice := append(append([]int(nil), desc...), desc...)
	if got := c.DescriptionEnd(twice); got != len(desc) {
		t.Errorf("DescriptionEnd with two separators = %d, want the first, %d", got, len(desc))
	}
}

// LongestResponse counts the tokens of the longest chosen or rejected
// response, whichever user and side holds it, and 0 without records.
func TestLongestResponse(t *testing.T) {
	tok := tokenizer.Llama2C(loadTok(t))
	long := "Once upon a time, there was a little dog named Max who loved to run in the park."
	recs := map[string][]dataset.Record{
		"a": {{Chosen: "Tom ran.", Rejected: "A cat sat."}},
		"b": {{Chosen: "Lily smiled.", Rejected: long}, {Chosen: "Sam hid.", Rejected: "No."}},
	}
	if got, want := LongestResponse(tok, recs), len(tok.Encode(long, false)); got != want || want < 10 {
		t.Errorf("LongestResponse = %d, want %d (the rejected response of user b)", got, want)
	}
	if got := LongestResponse(tok, nil); got != 0 {
		t.Errorf("no records: %d, want 0", got)
	}
}
