package stories

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"fspo/fileio"
	"fspo/model"
	"fspo/tokenizer"
)

// CandidatesName is the candidate pool's file name inside a data directory.
const CandidatesName = "candidates.jsonl"

// Persona is the random reader a candidate was written for: the values its
// steering text names (unused ones empty) and the length it was cut to.
type Persona struct {
	Name   string `json:"name,omitempty"`
	Animal string `json:"animal,omitempty"`
	Place  string `json:"place,omitempty"`
	Object string `json:"object,omitempty"`
	Mood   string `json:"mood,omitempty"`
	Length string `json:"length"` // "short" or "long"
}

// Prefs is the persona as a profile: a like of weight 1 for every value it
// names and its length with weight 1.
func (p Persona) Prefs() []Pref {
	var prefs []Pref
	for _, s := range []struct {
		c Category
		v string
	}{{Name, p.Name}, {Animal, p.Animal}, {Place, p.Place}, {Object, p.Object}, {Mood, p.Mood}} {
		if s.v != "" {
			prefs = append(prefs, Pref{Category: s.c, Value: s.v, Weight: 1})
		}
	}
	return append(prefs, Pref{Category: Length, Value: p.Length, Weight: 1})
}

// Candidate is one response of the shared pool: a continuation of a story
// opening written by the base model after the persona's steering text.
type Candidate struct {
	ID          string `json:"id"` // "p<prompt>-c<candidate>"
	PromptIndex int    `json:"prompt_index"`
	Prompt      string `json:"prompt"`
	HeldOut     bool   `json:"held_out"` // the prompt is a held-out opening
	// Steer is the persona's steering text, forced at the start of the
	// response: the model continues after it, and it stays part of the
	// response (so the persona's words are really in the story the users
	// judge, and a trained model learns to write such openings itself).
	// Empty for an unsteered candidate (the base model's own continuation).
	Steer              string  `json:"steer"`
	Response           string  `json:"response"`
	Tokens             int     `json:"tokens"` // tokens of Response alone (tokenizer.Encode without BOS)
	Persona            Persona `json:"persona"`
	PersonaDescription string  `json:"persona_description"`
}

// slot is one planned candidate before generation.
type slot struct {
	c      Candidate
	input  []int // BOS + prompt + " " + steer
	budget int   // continuation tokens to generate at most
	limit  int   // response tokens at most (ShortTokens or LongTokens)
}

// mix is a small integer hash (SplitMix64 finaliser, Steele et al. 2014)
// used to derive independent seeds.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fill replaces the placeholders of a template with the persona's values,
// recording which ones were used.
func fill(tmpl string, all Persona, used *Persona) string {
	r := tmpl
	for _, s := range []struct {
		key  string
		v    string
		dest *string
	}{{"{name}", all.Name, &used.Name}, {"{animal}", all.Animal, &used.Animal}, {"{place}", all.Place, &used.Place},
		{"{object}", all.Object, &used.Object}, {"{mood}", all.Mood, &used.Mood}} {
		if strings.Contains(r, s.key) {
			r = strings.ReplaceAll(r, s.key, s.v)
			*s.dest = s.v
		}
	}
	return r
}

// planPersona draws the persona and steering text of candidate j of prompt
// i: a random value of every category, one steering template (which names
// two or three of them) and, with probability 1/2, a mood sentence. When
// unsteered, the persona has only a length and the steering text is empty:
// the base model's own continuation of the opening.
func planPersona(seed int64, i, j int, prompt string, unsteered bool) (Persona, string) {
	rng := rand.New(rand.NewPCG(mix(uint64(seed)), mix(uint64(i)<<20|uint64(j))))
	if unsteered {
		p := Persona{Length: "short"}
		if rng.IntN(2) == 0 {
			p.Length = "long"
		}
		return p, ""
	}
	pickWord := func(c Category) string { vs := Values(c); return vs[rng.IntN(len(vs))].Word }
	all := Persona{Name: pickWord(Name), Animal: pickWord(Animal), Place: pickWord(Place), Object: pickWord(Object), Mood: pickWord(Mood)}
	var used Persona
	steer := fill(steerTemplates[rng.IntN(len(steerTemplates))], all, &used)
	if strings.HasSuffix(prompt, ".") {
		steer = strings.ToUpper(steer[:1]) + steer[1:]
	}
	if rng.IntN(2) == 0 {
		steer += " " + fill(moodTemplates[rng.IntN(len(moodTemplates))], all, &used)
	}
	used.Length = "short"
	if rng.IntN(2) == 0 {
		used.Length = "long"
	}
	return used, steer
}

// planPool lays out every candidate of every prompt, in order.
func planPool(opt *Options, tok tokenizer.Codec, prompts []string, nTrain int) []slot {
	var slots []slot
	for i, pr := range prompts {
		for j := range opt.PoolSize {
			per, steer := planPersona(opt.Seed, i, j, pr, opt.Unsteered > 0 && j%opt.Unsteered == opt.Unsteered-1)
			input := tok.Encode(strings.TrimSpace(pr+" "+steer), true)
			steerToks := len(tok.Encode(steer, false))
			limit := opt.ShortTokens
			if per.Length == "long" {
				limit = opt.LongTokens
			}
			slots = append(slots, slot{
				c: Candidate{
					ID: fmt.Sprintf("p%02d-c%02d", i, j), PromptIndex: i, Prompt: pr, HeldOut: i >= nTrain,
					Steer: steer, Persona: per,
					PersonaDescription: DescribeAs(opt.Descriptions, per.Prefs(), mix(uint64(opt.Seed)^uint64(i)<<20^uint64(j))),
				},
				input:  input,
				budget: max(4, limit-steerToks+6), // a little more, as decoding and re-encoding may differ
				limit:  limit,
			})
		}
	}
	return slots
}

// sentenceEnds returns the offsets just after each complete sentence of
// text (after ., ! or ?, and a closing quote when one follows) at which the
// double quotes so far are balanced, in increasing order.
func sentenceEnds(text string) []int {
	var ends []int
	quotes := 0
	for k := 0; k < len(text); k++ {
		switch text[k] {
		case '"':
			quotes++
		case '.', '!', '?':
			e := k + 1
			q := quotes
			if e < len(text) && text[e] == '"' {
				e++
				q++
			}
			if q%2 == 0 {
				ends = append(ends, e)
			}
		}
	}
	return ends
}

// finish cuts a response (white space collapsed) at a sentence end after
// the steering text (which ends one, at offset steerLen): the first such
// end for a short persona, the last for a long one, among those whose text
// has at most limit tokens by count; the steering text alone when none
// qualifies. An unsteered response (steerLen 0) without a sentence end in
// the limit is cut after its last whole word in the limit (and is
// reported as unfinished).
func finish(text string, steerLen, limit int, long bool, count func(string) int) string {
	text = strings.Join(strings.Fields(text), " ")
	best := steerLen
	for _, e := range sentenceEnds(text) {
		if e <= steerLen {
			continue
		}
		if count(text[:e]) > limit {
			break
		}
		best = e
		if !long {
			break
		}
	}
	if best == 0 {
		words := strings.Fields(text)
		for n := len(words); n > 0; n-- {
			if t := strings.Join(words[:n], " "); count(t) <= limit {
				return t
			}
		}
	}
	return text[:best]
}

// generatePool generates the candidates of slots in chunks of batch
// sequences, appending each finished chunk to path; chunks already in the
// file (from an interrupted run) are kept and not generated again.
func generatePool(ctx context.Context, m *model.Model, tok tokenizer.Codec, opt *Options, slots []slot, path string, logf func(string, ...any)) ([]Candidate, error) {
	have, err := readCandidates(path, slots, opt.Batch)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	out := have
	for start := len(have); start < len(slots); start += opt.Batch {
		chunk := slots[start:min(start+opt.Batch, len(slots))]
		inputs := make([][]int, len(chunk))
		for k, s := range chunk {
			inputs[k] = s.input
		}
		counts := make([]int, len(chunk))
		gen, err := m.GenerateBatch(ctx, inputs, model.GenOptions{
			MaxTokens: opt.LongTokens, Temperature: float32(opt.Temperature), TopP: float32(opt.TopP),
			Seed: mix(uint64(opt.Seed) ^ uint64(start)), Stop: stops(tok),
		}, func(k, _ int) bool { counts[k]++; return counts[k] < chunk[k].budget })
		if err != nil {
			return nil, fmt.Errorf("generate candidates %d–%d: %w", start, start+len(chunk)-1, err)
		}
		count := func(t string) int { return len(tok.Encode(t, false)) }
		var buf bytes.Buffer
		for k, s := range chunk {
			c := s.c
			c.Response = finish(c.Steer+tok.DecodeIDs(gen[k].Tokens, true), len(c.Steer), s.limit, c.Persona.Length == "long", count)
			if c.Response == "" {
				return nil, fmt.Errorf("candidate %s: the model wrote nothing after %q", c.ID, c.Prompt)
			}
			c.Tokens = len(tok.Encode(c.Response, false))
			line, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode candidate %s: %w", c.ID, err)
			}
			buf.Write(line)
			buf.WriteByte('\n')
			out = append(out, c)
		}
		if _, err := f.Write(buf.Bytes()); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("sync %s: %w", path, err)
		}
		logf("candidates: %d/%d", len(out), len(slots))
	}
	return out, nil
}

// readCandidates reads the candidates an earlier run wrote to path (none
// when it does not exist), keeps the complete chunks and cuts the file
// after them: a crash can leave a partial line or a partial chunk, which is
// generated again. Every kept candidate must be the planned one (same id,
// prompt and steering), or the directory belongs to another run.
func readCandidates(path string, slots []slot, batch int) ([]Candidate, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	defer f.Close()
	var got []Candidate
	var ends []int64 // file offset after each candidate
	r := bufio.NewReader(f)
	var off int64
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a partial last line (no newline) is dropped
		}
		if err != nil {
			return nil, fmt.Errorf("resume %s: %w", path, err)
		}
		off += int64(len(b))
		var c Candidate
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("resume %s:%d: %w", path, line, err)
		}
		k := len(got)
		if k >= len(slots) {
			return nil, fmt.Errorf("resume %s:%d: more candidates than this run plans (%d); use another --out", path, line, len(slots))
		}
		if want := slots[k].c; c.ID != want.ID || c.Prompt != want.Prompt || c.Steer != want.Steer {
			return nil, fmt.Errorf("resume %s:%d: candidate %s (%q) is not this run's candidate %s (%q); the directory was made with other settings, use another --out", path, line, c.ID, c.Steer, want.ID, want.Steer)
		}
		got = append(got, c)
		ends = append(ends, off)
	}
	keep := len(got)
	if keep < len(slots) {
		keep -= keep % batch
	}
	var size int64
	if keep > 0 {
		size = ends[keep-1]
	}
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("resume %s: cut to %d complete candidates: %w", path, keep, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	return got[:keep], nil
}

// LoadCandidates reads dir/candidates.jsonl strictly (unknown fields are
// errors; every line a candidate with an id, a prompt and a response).
// Errors name the file and line.
func LoadCandidates(dir string) ([]Candidate, error) {
	path := filepath.Join(dir, CandidatesName)
	cands, err := fileio.Parse(path, parseCandidates)
	if err != nil {
		return nil, fmt.Errorf("load candidates: %w", err)
	}
	return cands, nil
}

func parseCandidates(data []byte) ([]Candidate, error) {
	var out []Candidate
	ids := map[string]bool{}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			if i == len(lines)-1 {
				break // the newline ending the last line
			}
			return nil, fileio.AtLine(i+1, "empty line")
		}
		var c Candidate
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, &fileio.LineError{Line: i + 1, Err: err}
		}
		switch {
		case strings.TrimSpace(c.ID) == "":
			return nil, fileio.AtLine(i+1, "id: missing")
		case ids[c.ID]:
			return nil, fileio.AtLine(i+1, "id %q listed twice", c.ID)
		case strings.TrimSpace(c.Prompt) == "":
			return nil, fileio.AtLine(i+1, "prompt: missing")
		case strings.TrimSpace(c.Response) == "":
			return nil, fileio.AtLine(i+1, "response: missing")
		}
		ids[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

// stops end a story: EOS, and BOS (stories260K separates documents with it).
func stops(tok tokenizer.Codec) []int {
	var out []int
	for _, id := range []int{tok.EOS(), tok.BOS()} {
		if id >= 0 {
			out = append(out, id)
		}
	}
	return out
}
