package hf

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Encode returns the ids of text. Added tokens written in the text are
// matched first (leftmost, longest), as Hugging Face's tokenizer does; the
// rest is normalized, pre-tokenized and merged. addSpecial puts the
// post-processor's tokens (e.g. BOS) in front, and EOS last when
// tokenizer_config.json says add_eos_token.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	var out []int
	if addSpecial {
		out = append(out, t.prefix...)
	}
	start := 0
	for i := 0; i < len(text); {
		id, n := t.addedAt(text, i)
		if n == 0 {
			i++
			continue
		}
		out = t.encodeSegment(out, text[start:i])
		out = append(out, id)
		i += n
		start = i
	}
	out = t.encodeSegment(out, text[start:])
	if addSpecial {
		out = append(out, t.suffix...)
	}
	return out
}

// addedAt returns the longest added token at text[i:], or n = 0.
func (t *Tokenizer) addedAt(text string, i int) (id, n int) {
	for _, k := range t.addedByFirst[text[i]] {
		a := t.added[k]
		if len(a.Content) > n && strings.HasPrefix(text[i:], a.Content) {
			id, n = a.ID, len(a.Content)
		}
	}
	return id, n
}

func (t *Tokenizer) encodeSegment(out []int, seg string) []int {
	if seg == "" {
		return out
	}
	if t.nfc {
		seg = norm.NFC.String(seg)
	}
	if !t.byteLevel {
		return t.encodeSentencePiece(out, seg)
	}
	for _, word := range t.split.split(seg) {
		w := byteLevel(word)
		if id, ok := t.vocab[w]; ok && t.ignoreMerges {
			out = append(out, id)
			continue
		}
		ids := make([]int, 0, len(w))
		for _, r := range w {
			ids = append(ids, t.vocab[string(r)])
		}
		out = append(out, t.merge(ids)...)
	}
	return out
}

// encodeSentencePiece prepends ▁, turns spaces into ▁, merges, and spells
// characters missing from the vocabulary as byte tokens <0xXX>.
func (t *Tokenizer) encodeSentencePiece(out []int, seg string) []int {
	seg = "▁" + strings.ReplaceAll(seg, " ", "▁")
	var runes []rune
	ids := make([]int, 0, len(seg))
	for _, r := range seg {
		id, ok := t.vocab[string(r)]
		if !ok {
			id = -1 - len(runes) // never merges; spelled in bytes below
		}
		runes = append(runes, r)
		ids = append(ids, id)
	}
	for _, id := range t.merge(ids) {
		if id >= 0 {
			out = append(out, id)
			continue
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], runes[-1-id])
		for _, b := range buf[:n] {
			if bid, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				out = append(out, bid)
			} else {
				out = append(out, t.unk)
			}
		}
	}
	return out
}
