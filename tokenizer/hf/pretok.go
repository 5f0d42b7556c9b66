package hf

import "unicode"

// Pre-tokenizer patterns: the Split regexes tokenizer.json files declare,
// each implemented by a hand-written scanner with the regex's leftmost-first
// semantics (Go's regexp lacks the look-ahead in `\s+(?!\S)`).
const (
	// patternLlama3 is Llama 3.x's split regex (numbers in runs of 1–3).
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternQwen2 is Qwen2/2.5/3's: the same with single digits.
	patternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternGPT2 is GPT-2's (ByteLevel with use_regex).
	patternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// patternSmolLM names SmolLM's pipeline: every digit split off first
	// (Digits with individual_digits), then GPT-2's regex in each part.
	patternSmolLM = `\p{N}` + " then " + patternGPT2
)

// splitter cuts normalized text into words before BPE.
type splitter struct {
	maxDigits int  // length limit of a digit run: 3 (Llama 3) or 1 (Qwen2)
	gpt2      bool // GPT-2's regex instead (maxDigits unused)
	digits    bool // with gpt2: each digit is a part of its own first
}

// pattern is the regex (or pipeline) name of s.
func (s splitter) pattern() string {
	switch {
	case s.gpt2 && s.digits:
		return patternSmolLM
	case s.gpt2:
		return patternGPT2
	case s.maxDigits == 3:
		return patternLlama3
	}
	return patternQwen2
}

func isL(r rune) bool  { return unicode.IsLetter(r) }
func isN(r rune) bool  { return unicode.IsNumber(r) }
func isS(r rune) bool  { return unicode.IsSpace(r) }
func isNL(r rune) bool { return r == '\r' || r == '\n' }

// split returns the words of text in order; they concatenate to text.
func (s splitter) split(text string) []string {
	rs := []rune(text)
	var out []string
	for start := 0; start < len(rs); {
		end := len(rs)
		if s.digits { // a digit alone, or the run up to the next digit
			end = start + 1
			for !isN(rs[start]) && end < len(rs) && !isN(rs[end]) {
				end++
			}
		}
		part := rs[start:end]
		for i := 0; i < len(part); {
			n := s.match(part, i)
			out = append(out, string(part[i:i+n]))
			i += n
		}
		start = end
	}
	return out
}

// match returns the length in runes of the regex match starting at i (≥ 1).
func (s splitter) match(rs []rune, i int) int {
	if s.gpt2 {
		return matchGPT2(rs, i)
	}
	if n := contraction(rs, i, true); n > 0 {
		return n
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	j := i
	if !isNL(rs[j]) && !isL(rs[j]) && !isN(rs[j]) && j+1 < len(rs) && isL(rs[j+1]) {
		j++
	}
	if isL(rs[j]) {
		for j < len(rs) && isL(rs[j]) {
			j++
		}
		return j - i
	}
	// \p{N}{1,max}
	if isN(rs[i]) {
		j = i
		for j < len(rs) && j-i < s.maxDigits && isN(rs[j]) {
			j++
		}
		return j - i
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j = i
	if rs[j] == ' ' && j+1 < len(rs) {
		j++
	}
	if other(rs[j]) {
		for j < len(rs) && other(rs[j]) {
			j++
		}
		for j < len(rs) && isNL(rs[j]) {
			j++
		}
		return j - i
	}
	return whitespace(rs, i)
}

// matchGPT2 is match for GPT-2's regex: a contraction (lower case only), an
// optional space and a run of letters, of numbers or of other characters,
// else whitespace (\s+(?!\S)|\s+).
func matchGPT2(rs []rune, i int) int {
	if n := contraction(rs, i, false); n > 0 {
		return n
	}
	j := i
	if rs[j] == ' ' && j+1 < len(rs) {
		j++
	}
	for _, class := range []func(rune) bool{isL, isN, other} {
		if class(rs[j]) {
			for j < len(rs) && class(rs[j]) {
				j++
			}
			return j - i
		}
	}
	end := i
	for end < len(rs) && isS(rs[end]) {
		end++
	}
	if end == len(rs) || end-i == 1 {
		return end - i
	}
	return end - 1 - i // leave the last space to the next word
}

// other is [^\s\p{L}\p{N}].
func other(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// whitespace matches \s*[\r\n]+|\s+(?!\S)|\s+ at i, where rs[i] is a space.
func whitespace(rs []rune, i int) int {
	end := i
	lastNL := -1
	for end < len(rs) && isS(rs[end]) {
		if isNL(rs[end]) {
			lastNL = end
		}
		end++
	}
	switch {
	case lastNL >= 0: // \s*[\r\n]+ backtracks to the last newline of the run
		return lastNL + 1 - i
	case end == len(rs) || end-i == 1: // \s+(?!\S) at the end, or \s+
		return end - i
	default: // \s+(?!\S): leave the last space to the next word
		return end - 1 - i
	}
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i, case-insensitively
// when fold ((?i:…): Unicode simple case folding lets ſ (U+017F) match s).
func contraction(rs []rune, i int, fold bool) int {
	if rs[i] != '\'' || i+1 >= len(rs) {
		return 0
	}
	is := func(k int, c rune) bool {
		if k >= len(rs) {
			return false
		}
		if !fold {
			return rs[k] == c
		}
		r := unicode.ToLower(rs[k])
		return r == c || (c == 's' && rs[k] == 'ſ')
	}
	switch {
	case is(i+1, 's'), is(i+1, 't'), is(i+1, 'm'), is(i+1, 'd'):
		return 2
	case is(i+1, 'r') && is(i+2, 'e'), is(i+1, 'v') && is(i+2, 'e'), is(i+1, 'l') && is(i+2, 'l'):
		return 3
	}
	return 0
}

// byteToRune is GPT-2's ByteLevel map from bytes to printable runes.
var byteToRune, runeToByte = byteLevelMaps()

func byteLevelMaps() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	n := rune(256)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= 33 && b <= 126) && !(b >= 161 && b <= 172) && !(b >= 174) {
			r = n
			n++
		}
		b2r[b] = r
		r2b[r] = byte(b)
	}
	return b2r, r2b
}

// byteLevel maps the bytes of word to ByteLevel runes.
func byteLevel(word string) string {
	rs := make([]rune, len(word))
	for k := 0; k < len(word); k++ {
		rs[k] = byteToRune[word[k]]
	}
	return string(rs)
}
