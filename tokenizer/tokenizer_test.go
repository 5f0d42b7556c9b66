package tokenizer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fspo/internal/testenv"
)

// load returns the built-in stories260K tokenizer (tok512.bin).
func load(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := Load(testenv.Model(tb).Tokenizer)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestLoadStories260K(t *testing.T) {
	tok := load(t)
	if got, want := tok.VocabSize(), 512; got != want {
		t.Errorf("VocabSize = %d, want %d", got, want)
	}
	if got, want := tok.MaxTokenLength(), 7; got != want {
		t.Errorf("MaxTokenLength = %d, want %d", got, want)
	}
	pieces := []struct {
		id   int
		want string
	}{
		{UNK, "<unk>"}, {BOS, "\n<s>\n"}, {EOS, "\n</s>\n"},
		{3, "<0x00>"}, {13, "<0x0A>"}, {258, "<0xFF>"},
		{259, " t"}, {403, " Once"}, {410, " "}, {511, "\u200a"},
	}
	for _, c := range pieces {
		if got := tok.Piece(c.id); got != c.want {
			t.Errorf("Piece(%d) = %q, want %q", c.id, got, c.want)
		}
	}
	if got, want := tok.Score(260), float32(-1); got != want {
		t.Errorf("Score(260) = %v, want %v", got, want)
	}
	if err := tok.CheckVocab(512); err != nil {
		t.Errorf("CheckVocab(512) = %v", err)
	}
	if err := tok.CheckVocab(32000); err == nil || !strings.Contains(err.Error(), "32000") {
		t.Errorf("CheckVocab(32000) = %v, want an error naming 32000", err)
	}
	if err := tok.CheckIDs([]int{1, 511, 512}); err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("CheckIDs = %v, want an error at position 2", err)
	}
}

// TestEncodeReference compares with the token ids that llama2.c's run.c
// produced for the texts in reference-logprobs.json.
func TestEncodeReference(t *testing.T) {
	tok := load(t)
	data := testenv.Reference(t, "reference-logprobs.json")
	var ref struct {
		Cases []struct {
			Text   string `json:"text"`
			Tokens []int  `json:"tokens"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("reference-logprobs.json: %v", err)
	}
	if len(ref.Cases) != 3 {
		t.Fatalf("reference-logprobs.json has %d cases, want 3", len(ref.Cases))
	}
	for _, c := range ref.Cases {
		got := tok.Encode(c.Text, true, false)
		if !slices.Equal(got, c.Tokens) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.Tokens)
		}
		if got := tok.DecodeAll(c.Tokens); got != c.Text {
			t.Errorf("DecodeAll(%v) = %q, want %q", c.Tokens, got, c.Text)
		}
	}
}

// TestEncodeCases pins encodings worked out by hand from the tok512 vocabulary.
func TestEncodeCases(t *testing.T) {
	tok := load(t)
	cases := []struct {
		text     string
		bos, eos bool
		want     []int
	}{
		{"", true, false, []int{BOS}},
		{"", false, true, []int{EOS}},
		{"", false, false, []int{}},
		{"a", false, false, []int{261}},           // " a"
		{"a", true, true, []int{BOS, 261, EOS}},   // BOS never merges
		{"\n", false, false, []int{410, 13}},      // " " then <0x0A>
		{"é", false, false, []int{410, 485}},      // two-byte character in the vocabulary
		{"ü", false, false, []int{410, 198, 191}}, // absent: bytes c3 bc + 3
		{"the", false, false, []int{265}},         // " t"+"he" -> " the"
	}
	for _, c := range cases {
		got := tok.Encode(c.text, c.bos, c.eos)
		if !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, %v, %v) = %v, want %v", c.text, c.bos, c.eos, got, c.want)
		}
	}
}

// roundTripTexts are texts that must come back unchanged from
// DecodeAll(Encode(text, true, false)).
var roundTripTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	" leading space", "  two leading spaces", "trailing space ", "\n",
	"line one\nline two\n\n\tindented\r\n",
	"Émile a mangé une crème brûlée à Noël — “très” bien…",
	"日本語のテキスト", "Ελληνικά", "emoji 😀🐱‍👤 👩🏽‍🚀 flags 🇫🇷",
	"bytes \x00\x01\x7f end", "invalid utf8 \xff\xfe \xc3 \x80\x80\x80\x80\x80 \xf0\x9f",
	"<0x41> <s> </s> <unk>", "\\u00e9 %s %d {}",
	strings.Repeat("The cat sat on the mat. ", 50),
}

func TestRoundTrip(t *testing.T) {
	tok := load(t)
	for _, text := range roundTripTexts {
		ids := tok.Encode(text, true, false)
		if err := tok.CheckIDs(ids); err != nil {
			t.Fatalf("Encode(%q): %v", text, err)
		}
		if got := tok.DecodeAll(ids); got != text {
			t.Errorf("DecodeAll(Encode(%q)) = %q", text, got)
		}
		// Token by token, as a generator streams them.
		var sb strings.Builder
		prev := -1
		for _, id := range append(ids, EOS) {
			if id != BOS && id != EOS {
				sb.WriteString(tok.Decode(prev, id))
			}
			prev = id
		}
		if got := sb.String(); got != text {
			t.Errorf("Decode stream of %q = %q", text, got)
		}
	}
}

func TestDecode(t *testing.T) {
	tok := load(t)
	cases := []struct {
		prev, tok int
		want      string
		printable string
	}{
		{BOS, 403, "Once", "Once"},   // " Once" after BOS loses its space
		{261, 403, " Once", " Once"}, // elsewhere it keeps it
		{BOS, 410, "", ""},           // " " after BOS
		{403, 13, "\n", "\n"},        // <0x0A>
		{403, 3, "\x00", ""},         // <0x00>: raw byte, prints nothing
		{403, 4, "\x01", ""},         // control byte
		{403, 3 + 0xC3, "\xc3", ""},  // lone UTF-8 lead byte
		{403, 3 + 'A', "A", "A"},     // printable byte fallback
		{403, 3 + '\t', "\t", "\t"},  // whitespace prints
		{403, BOS, "\n<s>\n", "\n<s>\n"},
		{403, 485, "é", "é"}, // multi-byte piece prints whole
	}
	for _, c := range cases {
		if got := tok.Decode(c.prev, c.tok); got != c.want {
			t.Errorf("Decode(%d, %d) = %q, want %q", c.prev, c.tok, got, c.want)
		}
		if got := tok.DecodePrintable(c.prev, c.tok); got != c.printable {
			t.Errorf("DecodePrintable(%d, %d) = %q, want %q", c.prev, c.tok, got, c.printable)
		}
	}
	if got, want := tok.DecodeAll([]int{BOS, 403, 407, 261, 378, 426, EOS}), "Once upon a time."; got != want {
		t.Errorf("DecodeAll = %q, want %q", got, want)
	}
}

// TestDecodePrintableReference rebuilds the greedy reference text printed by
// llama2.c's run from its own tokens: the prompt tokens are printed through
// DecodePrintable exactly as run.c's generate loop does.
func TestDecodePrintableReference(t *testing.T) {
	tok := load(t)
	data := testenv.Reference(t, "reference-greedy-cat-n100.txt")
	const prompt = "Once upon a time, there was a cat"
	ids := tok.Encode(prompt, true, false)
	var sb strings.Builder
	for i := 1; i < len(ids); i++ {
		sb.WriteString(tok.DecodePrintable(ids[i-1], ids[i]))
	}
	if got := sb.String(); !strings.HasPrefix(string(data), got) {
		t.Errorf("printed prompt %q is not a prefix of the reference %q", got, data)
	}
	// The whole reference text must survive an encode/decode round trip.
	text := strings.TrimRight(string(data), "\n")
	if got := tok.DecodeAll(tok.Encode(text, true, false)); got != text {
		t.Errorf("round trip of the reference text differs:\n got %q\nwant %q", got, text)
	}
}

// file builds a tokenizer file: header, then (score, piece) records.
type file struct {
	maxLen int32
	pieces []string
	scores []float32
}

// byteVocab is a minimal valid vocabulary: the specials and byte fallbacks.
func byteVocab() file {
	f := file{maxLen: 8}
	f.add(0, "<unk>")
	f.add(0, "<s>")
	f.add(0, "</s>")
	for b := 0; b < 256; b++ {
		f.add(0, "<0x"+strings.ToUpper(hex2(b))+">")
	}
	return f
}

func hex2(b int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func (f *file) add(score float32, piece string) {
	f.pieces = append(f.pieces, piece)
	f.scores = append(f.scores, score)
}

func (f file) bytes() []byte {
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, f.maxLen)
	for i, p := range f.pieces {
		binary.Write(&buf, binary.LittleEndian, math.Float32bits(f.scores[i]))
		binary.Write(&buf, binary.LittleEndian, int32(len(p)))
		buf.WriteString(p)
	}
	return buf.Bytes()
}

func TestParseErrors(t *testing.T) {
	valid := byteVocab().bytes()
	withLen := func(at int, n int32) []byte { // the length field at offset at replaced by n
		b := slices.Clone(valid)
		binary.LittleEndian.PutUint32(b[at:], uint32(n))
		return b
	}
	lastLen := len(valid) - len("<0xFF>") - 4
	wrongByte := byteVocab()
	wrongByte.pieces[3+0x41] = "A"
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "offset 0: truncated"},
		{"short header", []byte{7, 0}, "offset 0: truncated"},
		{"zero max length", []byte{0, 0, 0, 0}, "max_token_length 0"},
		{"negative max length", []byte{0xff, 0xff, 0xff, 0xff}, "max_token_length -1"},
		{"no tokens", []byte{7, 0, 0, 0}, "offset 4: vocabulary has 0 tokens"},
		{"truncated record header", valid[:4+6], "offset 4: token 0: truncated"},
		{"truncated piece", valid[:4+8+2], "offset 12: token 0: truncated"},
		{"truncated last piece", valid[:len(valid)-1], "token 258: truncated"},
		{"negative length", withLen(8, -5), "offset 8: token 0: piece length -5 is negative"},
		{"huge length", withLen(8, 1<<30), "offset 8: token 0: piece length 1073741824 exceeds max_token_length 8"},
		{"length past end", withLen(lastLen, 8), "token 258: truncated: piece of 8 bytes, 6 left"},
		{"vocab too small", valid[:len(valid)-14], "vocabulary has 258 tokens, fewer than the 259"},
		{"byte fallback wrong", wrongByte.bytes(), `token 68: piece "A", want the byte fallback "<0x41>"`},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse error = %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := Parse(valid); err != nil {
		t.Errorf("valid minimal file: %v", err)
	}
}

func TestLoadErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.bin")
	if err := os.WriteFile(path, []byte{7, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("Load error = %v, want one naming %s and the offset", err, path)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.bin")); err == nil || !strings.Contains(err.Error(), "missing.bin") {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
}
