package hf

import (
	"strings"
	"unicode/utf8"
)

// DecodeIDs returns the text of ids; skipSpecial leaves special tokens out.
// Ids outside the vocabulary are skipped.
func (t *Tokenizer) DecodeIDs(ids []int, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) || (skipSpecial && t.special[id]) {
			continue
		}
		b = t.appendPiece(b, t.pieces[id])
	}
	s := lossy(b)
	if !t.byteLevel {
		s = strings.TrimPrefix(s, " ")
	}
	return s
}

// appendPiece appends the bytes a piece stands for.
func (t *Tokenizer) appendPiece(b []byte, p string) []byte {
	if !t.byteLevel {
		if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
			if v, ok := hexByte(p[3:5]); ok {
				return append(b, v)
			}
		}
		return append(b, strings.ReplaceAll(p, "▁", " ")...)
	}
	start := len(b)
	for _, r := range p {
		c, ok := runeToByte[r]
		if !ok { // a token with runes outside the map stands for itself
			return append(b[:start], p...)
		}
		b = append(b, c)
	}
	return b
}

func hexByte(s string) (byte, bool) {
	var v byte
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | (c - '0')
		case 'A' <= c && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// lossy turns bytes into text, each invalid byte becoming U+FFFD.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

// BOS returns the beginning-of-sequence id (tokenizer_config.json
// bos_token), or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end id (tokenizer_config.json eos_token), or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// VocabSize returns the number of ids, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// ID returns the id of a token string.
func (t *Tokenizer) ID(piece string) (int, bool) {
	id, ok := t.vocab[piece]
	return id, ok
}

// Piece returns the token string of id, or "" outside the vocabulary.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}
