package tokenizer

import "strings"

// byteStrings[b] is the one-byte string b.
var byteStrings = func() (s [256]string) {
	for b := range s {
		s[b] = string([]byte{byte(b)})
	}
	return s
}()

// Decode returns the text of token tok following token prev, as run.c's
// decode does: after BOS a leading space of the piece is dropped (the
// sentencepiece decoder strips the dummy prefix), and a piece of the form
// <0xXX> becomes the raw byte XX. It panics when tok is outside the
// vocabulary (see CheckIDs).
//
// run.c returns an empty C string for <0x00>; Decode returns "\x00" so that
// decoding reproduces any encoded text. DecodePrintable keeps run.c's output.
func (t *Tokenizer) Decode(prev, tok int) string {
	t.mustID(tok)
	piece := t.pieces[tok]
	if prev == BOS && len(piece) > 0 && piece[0] == ' ' {
		piece = piece[1:]
	}
	if b, ok := rawByte(piece); ok {
		return byteStrings[b]
	}
	return piece
}

// rawByte recognises a byte piece the way run.c's
// sscanf(piece, "<0x%02hhX>", &byte_val) == 1 does for the pieces llama2.c
// exports: the prefix "<0x" and one or two hex digits of either case; like
// sscanf it does not check the closing '>'.
func rawByte(piece string) (byte, bool) {
	if !strings.HasPrefix(piece, "<0x") {
		return 0, false
	}
	v, n := 0, 0
	for _, c := range []byte(piece[3:]) {
		d, ok := hexDigit(c)
		if !ok || n == 2 {
			break
		}
		v = v*16 + d
		n++
	}
	return byte(v), n > 0
}

func hexDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// DecodePrintable is Decode filtered as run.c's safe_printf prints a piece:
// the text up to its first NUL (printf "%s"), and nothing for a one-byte
// piece that is neither printable nor whitespace in the C locale (control
// bytes and lone bytes >= 0x80). Concatenating it over a generation
// reproduces llama2.c's run output byte for byte.
func (t *Tokenizer) DecodePrintable(prev, tok int) string {
	piece := t.Decode(prev, tok)
	if i := strings.IndexByte(piece, 0); i >= 0 {
		piece = piece[:i]
	}
	if len(piece) == 1 && !isPrint(piece[0]) && !isSpace(piece[0]) {
		return ""
	}
	return piece
}

// isPrint and isSpace are C's isprint and isspace in the "C" locale.
func isPrint(c byte) bool { return 0x20 <= c && c <= 0x7e }
func isSpace(c byte) bool { return c == ' ' || ('\t' <= c && c <= '\r') }

// DecodeAll returns the text of a token sequence: the Decode of each token
// given its predecessor, with BOS and EOS themselves skipped. It panics on ids
// outside the vocabulary (see CheckIDs).
func (t *Tokenizer) DecodeAll(tokens []int) string {
	var sb strings.Builder
	prev := -1
	for _, tok := range tokens {
		if tok != BOS && tok != EOS {
			sb.WriteString(t.Decode(prev, tok))
		}
		prev = tok
	}
	return sb.String()
}
