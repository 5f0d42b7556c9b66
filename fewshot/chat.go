package fewshot

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"fspo/tokenizer"
	"fspo/tokenizer/chat"
)

// Chat is a chat model's conversation format, measured once from its
// template: an episode's prompt text is the user turn, its completion the
// assistant turn.
type Chat struct {
	Template *chat.Template
	// Options are passed to every rendering (e.g. enable_thinking).
	Options chat.Options
	// Lead is what the template writes at the start of every assistant
	// turn after the generation prompt (e.g. Qwen3's empty think block).
	Lead []int
	// End is the token that closes an assistant turn (<|eot_id|>,
	// <|im_end|>, …); completions end with it.
	End int
	// Stop lists the tokens that end generation: End, EOS and the model's
	// generation_config eos_token_id list.
	Stop []int
}

// sentinel stands for the assistant's content while the template's turn
// structure is measured.
const sentinel = "\x00fspo-assistant-turn\x00"

// NewChat measures tpl with tok: it renders a one-turn conversation with and
// without the assistant's answer and checks that the answer's rendering
// extends the generation prompt, as training on the assistant's tokens and
// generating after the generation prompt require. extraStop are more
// end-of-generation ids (generation_config.json's eos_token_id).
func NewChat(tok tokenizer.Codec, tpl *chat.Template, opt chat.Options, extraStop ...int) (*Chat, error) {
	user := []chat.Message{{Role: "user", Content: "Q"}}
	gen := opt
	gen.AddGenerationPrompt = true
	prefix, err := tpl.Render(user, gen)
	if err != nil {
		return nil, err
	}
	full, err := tpl.Render(append(slices.Clone(user), chat.Message{Role: "assistant", Content: sentinel}), opt)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(full, prefix)
	i := strings.Index(rest, sentinel)
	if !ok || i < 0 {
		return nil, fmt.Errorf("chat template: a rendered assistant turn does not continue the generation prompt %q", prefix)
	}
	lead, trailer := rest[:i], strings.TrimSpace(rest[i+len(sentinel):])
	c := &Chat{Template: tpl, Options: gen, End: tok.EOS()}
	if lead != "" {
		c.Lead = tok.Encode(lead, false)
	}
	if trailer != "" {
		ids := tok.Encode(trailer, false)
		if len(ids) == 0 || tok.DecodeIDs(ids[:1], true) != "" {
			return nil, fmt.Errorf("chat template: the assistant turn ends with %q, which does not start with a special token", trailer)
		}
		c.End = ids[0]
	}
	if c.End < 0 {
		return nil, fmt.Errorf("chat template: the assistant turn has no end token and the tokenizer no EOS")
	}
	for _, id := range append([]int{c.End, tok.EOS()}, extraStop...) {
		if id >= 0 && !slices.Contains(c.Stop, id) {
			c.Stop = append(c.Stop, id)
		}
	}
	return c, nil
}

// prompt renders text as the user turn and the generation prompt.
func (c *Chat) prompt(tok tokenizer.Codec, text string) ([]int, error) {
	s, err := c.Template.Render([]chat.Message{{Role: "user", Content: text}}, c.Options)
	if err != nil {
		return nil, err
	}
	return tok.Encode(s, false), nil
}

// Stream turns generated tokens into text pieces as they come, holding back
// bytes that do not yet form whole UTF-8 characters (a byte-level token may
// carry part of one).
type Stream struct {
	c    Codec
	ids  []int
	sent int
}

// NewStream starts a stream of tokens generated after the header.
func (c Codec) NewStream() *Stream { return &Stream{c: c} }

// Push adds a token and returns the text it completes, possibly empty.
func (s *Stream) Push(tok int) string {
	s.ids = append(s.ids, tok)
	text := s.c.Text(s.ids)
	if len(text) <= s.sent {
		return ""
	}
	piece := text[s.sent:]
	if r, _ := utf8.DecodeLastRuneInString(piece); r == utf8.RuneError || !utf8.ValidString(piece) {
		return ""
	}
	s.sent = len(text)
	return piece
}

// Flush returns what Push held back.
func (s *Stream) Flush() string {
	text := s.c.Text(s.ids)
	if len(text) <= s.sent {
		return ""
	}
	piece := text[s.sent:]
	s.sent = len(text)
	return piece
}
