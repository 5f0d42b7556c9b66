// Package recipetest is a scripted model for the recipe pipeline's tests:
// an llmtest.Script that answers each stage (told apart by the JSON schema
// name the pipeline sends) deterministically from the request text, with a
// judge whose verdicts follow a hidden score per (description, response),
// so labels are consistent across orders except for an injected position
// bias, and undecided pairs become rarer as clauses are appended.
package recipetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fspo/llm/llmtest"
)

func hash(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return binary.LittleEndian.Uint64(h.Sum(nil))
}

func unit(parts ...string) float64 { return float64(hash(parts...)>>11) / float64(1<<53) }

func reply(v any) llmtest.Reply {
	b, _ := json.Marshal(v)
	return llmtest.Reply{Text: string(b)}
}

var countRE = regexp.MustCompile(`(?:Write|List) (\d+) `)

func count(prompt string) int {
	if m := countRE.FindStringSubmatch(prompt); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 3
}

// section returns the text after the heading "## name\n" up to the next
// blank line followed by a heading or instruction.
func section(prompt, name string) string {
	_, after, ok := strings.Cut(prompt, "## "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(after, "\n\n"); i >= 0 {
		after = after[:i]
	}
	return after
}

// Clauses counts the refinement clauses in a description.
func Clauses(desc string) int { return strings.Count(desc, "[clause ") }

// Script answers the pipeline's calls.
func Script(req llmtest.ChatRequest) llmtest.Reply {
	prompt := req.Last()
	stage := ""
	if rf := req.ResponseFormat; rf != nil && rf.JSONSchema != nil {
		stage = rf.JSONSchema.Name
	}
	h := fmt.Sprintf("%08x", hash(prompt)>>32)
	switch stage {
	case "persona":
		return reply(map[string]string{"description": "Persona " + h + " who likes " + lastWords(prompt, 6) + "."})
	case "question":
		var qs []string
		for i := 0; i < count(prompt); i++ {
			qs = append(qs, fmt.Sprintf("Question %08x about %s?", hash(prompt, strconv.Itoa(i))>>32, lastWords(prompt, 3)))
		}
		return reply(map[string][]string{"questions": qs})
	case "view":
		var vs []string
		for i := 0; i < count(prompt); i++ {
			vs = append(vs, fmt.Sprintf("viewpoint %08x", hash(prompt, strconv.Itoa(i))>>32))
		}
		return reply(map[string][]string{"views": vs})
	case "label":
		desc, a, b := section(prompt, "User Description"), section(prompt, "Response A"), section(prompt, "Response B")
		sa, sb := unit(desc, a), unit(desc, b)
		switch {
		case hash(desc, a, b, "bias")%8 == 0:
			return reply(map[string]string{"preferred": "A"})
		case sa-sb < 0.3/float64(1+3*Clauses(desc)) && sb-sa < 0.3/float64(1+3*Clauses(desc)):
			return reply(map[string]string{"preferred": "undecided"})
		case sa > sb:
			return reply(map[string]string{"preferred": "A"})
		}
		return reply(map[string]string{"preferred": "B"})
	case "refine":
		return reply(map[string]string{"preferred": "A", "clause": "[clause " + h[:4] + "]"})
	case "":
		if strings.Contains(prompt, "### Model m\n") {
			return alpaca(prompt)
		}
		// Sampling at a temperature: the seed (one per candidate) varies the text.
		if req.Seed != nil {
			h = fmt.Sprintf("%08x", hash(prompt, strconv.FormatInt(*req.Seed, 10))>>32)
		}
		words := strings.Fields(prompt)
		if len(words) > 10 {
			words = words[len(words)-10:]
		}
		return llmtest.Reply{Text: fmt.Sprintf("Response %s: %s %s.", h, strings.Join(words, " "), req.Model)}
	}
	return llmtest.Reply{Fault: llmtest.BadRequest}
}

func lastWords(s string, n int) string {
	w := strings.Fields(s)
	if len(w) > n {
		w = w[len(w)-n:]
	}
	return strings.Join(w, " ")
}

// Flaky fails a deterministic share (1/every) of distinct requests with
// fault f for their first attempts (retries then succeed) and answers the
// rest with next.
func Flaky(every uint64, attempts int, f llmtest.Fault, next llmtest.Script) llmtest.Script {
	return func(req llmtest.ChatRequest) llmtest.Reply {
		if hash(req.Last(), "flaky")%every == 0 && req.Attempt <= attempts {
			return llmtest.Reply{Fault: f, RetryAfter: 10 * time.Millisecond}
		}
		return next(req)
	}
}

// Broken fails every attempt of the requests whose last message contains
// marker with a non-retryable 400, so those calls finally fail.
func Broken(marker string, next llmtest.Script) llmtest.Script {
	return func(req llmtest.ChatRequest) llmtest.Reply {
		if strings.Contains(req.Last(), marker) {
			return llmtest.Reply{Fault: llmtest.BadRequest}
		}
		return next(req)
	}
}

// between returns the text after start up to end (or the end of s).
func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, end)
	return strings.TrimSpace(before)
}

// alpaca answers the project's AlpacaEval-style judge prompt (package judge)
// with the letter m or M and its log-probabilities: P(m) is a logistic of
// the hidden score difference, sharper with each refinement clause.
func alpaca(prompt string) llmtest.Reply {
	desc := between(prompt, "## User Description", "## Instruction")
	a := between(prompt, "### Model m", "### Model M")
	b := between(prompt, "### Model M", "## Your Task")
	k := 4.0 * float64(1+3*Clauses(desc))
	pm := 1 / (1 + math.Exp(-k*(unit(desc, a)-unit(desc, b))))
	if hash(desc, a, b, "bias")%8 == 0 {
		pm = 0.97 // position bias: prefers the first output
	}
	letter := "m"
	if pm < 0.5 {
		letter = "M"
	}
	return llmtest.Reply{Text: letter, Logprobs: []llmtest.Token{{
		Token: letter, Logprob: math.Log(max(pm, 1-pm)),
		Top: map[string]float64{"m": math.Log(pm), "M": math.Log(1 - pm)},
	}}}
}
