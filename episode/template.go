package episode

import (
	"fmt"
	"strconv"
	"strings"

	"fspo/dataset"
)

// Variant selects what an episode's text shows (METHOD.md §2).
type Variant string

const (
	// Plain: N shots with preferred and dispreferred responses; the
	// completion is the preferred response.
	Plain Variant = "plain"
	// COT: as Plain, but the completion first states the user's description
	// (user-description chain of thought), then the response.
	COT Variant = "cot"
	// PreferredOnly: shots without their dispreferred responses.
	PreferredOnly Variant = "preferred-only"
	// ZeroShot: no shots at all — the non-personalized baseline.
	ZeroShot Variant = "zero-shot"
	// Oracle: the shots and the user's true description in the prompt.
	Oracle Variant = "oracle"
)

// Variants lists every variant, in the order above.
var Variants = []Variant{Plain, COT, PreferredOnly, ZeroShot, Oracle}

// ParseVariant reads a variant name as written on a command line.
func ParseVariant(s string) (Variant, error) {
	for _, v := range Variants {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown template variant %q (want one of %s)", s, variantNames())
}

func variantNames() string {
	names := make([]string, len(Variants))
	for i, v := range Variants {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// Layout is the text around the records: each header is written, then the
// value, then "\n". Layouts are data; Paper and Compact are the two given.
type Layout struct {
	Name string
	// Example starts shot i; "{i}" is replaced by the 1-based number.
	Example      string
	Question     string
	Preferred    string // also starts every completion
	Dispreferred string
	// Oracle introduces the true description in the Oracle variant's prompt.
	Oracle string
	// Description introduces the description a COT completion states.
	Description string
	// Task comes after the shots, before the question; it is left out when
	// the prompt has no shots (it speaks of "the examples above").
	Task string
}

// Paper is the paper's layout, exactly as METHOD.md §2 gives it
// (Singh et al. 2025, arXiv 2502.19312):
//
//	# Example 1
//	## Question
//	{x_1}
//	## Preferred Response
//	{y_w,1}
//	## Dispreferred Response
//	{y_l,1}
//	# Task
//	Given the examples above, generate a preferred response to the following question.
//	## Question
//	{x}
//
// with the completion "## Preferred Response\n{y}". The oracle's header is
// this package's choice; the paper does not print it.
var Paper = Layout{
	Name:         "paper",
	Example:      "# Example {i}\n",
	Question:     "## Question\n",
	Preferred:    "## Preferred Response\n",
	Dispreferred: "## Dispreferred Response\n",
	Oracle:       "# User Description\n",
	Description:  "## User Description\n",
	Task:         "# Task\nGiven the examples above, generate a preferred response to the following question.\n",
}

// Compact is the default layout for small-context models such as
// stories260K (512 positions, 512-token vocabulary): short inline headers,
// "Q: …\nA+: …\nA-: …\n" per shot, then "Q: {x}\n"; the completion is
// "A+: {y}". The paper's headers cost tens of tokens per shot there.
var Compact = Layout{
	Name:         "compact",
	Question:     "Q: ",
	Preferred:    "A+: ",
	Dispreferred: "A-: ",
	Oracle:       "U: ",
	Description:  "U: ",
}

// Layouts lists the layouts by name.
var Layouts = map[string]Layout{Paper.Name: Paper, Compact.Name: Compact}

// ParseLayout finds a layout by name.
func ParseLayout(name string) (Layout, error) {
	l, ok := Layouts[name]
	if !ok {
		return Layout{}, fmt.Errorf("unknown layout %q (want paper or compact)", name)
	}
	return l, nil
}

// Text is an episode rendered: the prompt (shots and question) and the two
// completions scored against it. The end-of-sequence token is appended when
// tokenizing, not here.
type Text struct {
	Prompt, Chosen, Rejected string
}

// Option adjusts Render.
type Option func(*options)

type options struct{ otherDescription string }

// OtherDescription gives the description for a COT rejected completion
// when the query record has no RejectedDescription: another user's
// description, chosen by the caller.
func OtherDescription(d string) Option { return func(o *options) { o.otherDescription = d } }

// Render turns an episode into text. Every shot and the query must belong
// to ep.User. COT needs the query's Description, and for the rejected
// completion its RejectedDescription or an OtherDescription option; Oracle
// needs the query's Description.
func Render(v Variant, l Layout, ep Episode, opts ...Option) (Text, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if _, err := ParseVariant(string(v)); err != nil {
		return Text{}, err
	}
	for i, s := range ep.Shots {
		if s.User != ep.User {
			return Text{}, fmt.Errorf("episode of user %q: shot %d belongs to user %q", ep.User, i+1, s.User)
		}
	}
	q := ep.Query
	if q.User != ep.User {
		return Text{}, fmt.Errorf("episode of user %q: query belongs to user %q", ep.User, q.User)
	}
	chosenDesc, rejectedDesc := q.Description, q.RejectedDescription
	switch v {
	case Oracle:
		if chosenDesc == "" {
			return Text{}, fmt.Errorf("oracle template for user %q: query record %s has no description", ep.User, q.Key())
		}
	case COT:
		if chosenDesc == "" {
			return Text{}, fmt.Errorf("cot template for user %q: query record %s has no description", ep.User, q.Key())
		}
		if rejectedDesc == "" {
			rejectedDesc = o.otherDescription
		}
		if rejectedDesc == "" {
			return Text{}, fmt.Errorf("cot template for user %q: query record %s has no rejected_description and no other user's description was given",
				ep.User, q.Key())
		}
	}
	return Text{
		Prompt:   PromptFor(v, l, ep.Shots, q.Prompt, chosenDesc),
		Chosen:   Completion(v, l, q.Chosen, chosenDesc),
		Rejected: Completion(v, l, q.Rejected, rejectedDesc),
	}, nil
}

// PromptFor is the prompt for a question given a user's shots: the text a
// server sends the model. It equals Render's prompt for the same inputs.
// description is used by Oracle only; ZeroShot ignores the shots. It does
// no checking (Render does).
func PromptFor(v Variant, l Layout, shots []dataset.Record, question, description string) string {
	var b strings.Builder
	field := func(header, value string) {
		b.WriteString(header)
		b.WriteString(value)
		b.WriteByte('\n')
	}
	if v == ZeroShot {
		shots = nil
	}
	for i, s := range shots {
		b.WriteString(strings.ReplaceAll(l.Example, "{i}", strconv.Itoa(i+1)))
		field(l.Question, s.Prompt)
		field(l.Preferred, s.Chosen)
		if v != PreferredOnly {
			field(l.Dispreferred, s.Rejected)
		}
	}
	if v == Oracle {
		field(l.Oracle, description)
	}
	if len(shots) > 0 {
		b.WriteString(l.Task)
	}
	field(l.Question, question)
	return b.String()
}

// Completion is the text the model is trained to produce after the prompt:
// the Preferred header and the response, preceded for COT by the
// Description header and the description.
func Completion(v Variant, l Layout, response, description string) string {
	if v == COT {
		return l.Description + description + "\n" + l.Preferred + response
	}
	return l.Preferred + response
}
