package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"fspo/tensor"
)

// sample is a small checkpoint with every field set.
func sample() *Checkpoint {
	return &Checkpoint{
		Format: "llama",
		Config: json.RawMessage(`{"dim":64,"n_layers":5}`),
		Step:   1234,
		RNG:    []byte{0, 1, 2, 250, 255},
		Meta:   map[string]string{"stage": "ipo", "data": "sha256:abc"},
		Params: []tensor.Tensor{
			{Name: "tok_embeddings", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 1e-30, -7}},
			{Name: "norm", Shape: []int{3}, Data: []float32{1, 1, 0.5}},
		},
		Optim: []tensor.Tensor{
			{Name: "adamw.m/norm", Shape: []int{3}, Data: []float32{0.1, 0.2, 0.3}},
			{Name: "adamw.step", Shape: []int{2}, Data: []float32{0, 1234}},
			{Name: "nan ok in optim", Shape: []int{1}, Data: []float32{float32(math.NaN())}},
		},
	}
}

func encodeBytes(t testing.TB, c *Checkpoint) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, c); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b.Bytes()
}

// reseal recomputes the trailing checksum after a deliberate edit.
func reseal(b []byte) []byte {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

// equal compares checkpoints bit for bit (NaN payloads included).
func equal(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	if got.Format != want.Format || got.Step != want.Step || !bytes.Equal(got.Config, want.Config) ||
		!bytes.Equal(got.RNG, want.RNG) || !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("got header %q %d %s %v %v, want %q %d %s %v %v", got.Format, got.Step, got.Config, got.RNG, got.Meta,
			want.Format, want.Step, want.Config, want.RNG, want.Meta)
	}
	for _, g := range []struct {
		name      string
		got, want []tensor.Tensor
	}{{"params", got.Params, want.Params}, {"optim", got.Optim, want.Optim}} {
		if len(g.got) != len(g.want) {
			t.Fatalf("%s: %d tensors, want %d", g.name, len(g.got), len(g.want))
		}
		for i := range g.got {
			a, b := g.got[i], g.want[i]
			if a.Name != b.Name || !reflect.DeepEqual(a.Shape, b.Shape) || len(a.Data) != len(b.Data) {
				t.Fatalf("%s %d: got %s %v (%d), want %s %v (%d)", g.name, i, a.Name, a.Shape, len(a.Data), b.Name, b.Shape, len(b.Data))
			}
			for j := range a.Data {
				if math.Float32bits(a.Data[j]) != math.Float32bits(b.Data[j]) {
					t.Errorf("%s %s[%d] = %v, want %v", g.name, a.Name, j, a.Data[j], b.Data[j])
				}
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ckpt")
	want := sample()
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, want)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != Magic || binary.LittleEndian.Uint32(b[8:]) != 1 {
		t.Errorf("file starts %q version %d, want %q version 1", b[:8], binary.LittleEndian.Uint32(b[8:]), Magic)
	}
	if h := binary.LittleEndian.Uint32(b[12:]); (16+h)%8 != 0 {
		t.Errorf("data starts at %d, want a multiple of 8", 16+h)
	}
	// 6+3+3+2+1 floats of data plus prefix, header and checksum.
	if h := int(binary.LittleEndian.Uint32(b[12:])); len(b) != 16+h+4*15+4 {
		t.Errorf("file is %d bytes, want %d", len(b), 16+h+4*15+4)
	}
}

func TestRoundTripEmpty(t *testing.T) {
	c := &Checkpoint{Format: "llama"}
	got, err := Decode(bytes.NewReader(encodeBytes(t, c)), int64(len(encodeBytes(t, c))))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, c)
}

func TestSaveReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	first := sample()
	if err := Save(path, first); err != nil {
		t.Fatal(err)
	}
	// A failing save (NaN parameter) leaves the old file and no temporary.
	bad := sample()
	bad.Params[1].Data[2] = float32(math.Inf(1))
	err := Save(path, bad)
	if err == nil || !strings.Contains(err.Error(), "parameter norm index 2 is +Inf") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save with Inf = %v, want an error naming the path, tensor and index", err)
	}
	second := sample()
	second.Step = 99
	if err := Save(path, second); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 99 {
		t.Errorf("step after overwrite = %d, want 99", got.Step)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only model.ckpt", names)
	}
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	b := encodeBytes(t, sample())
	for n := 0; n < len(b); n++ {
		if _, err := Decode(bytes.NewReader(b[:n]), int64(n)); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	// The same through a file, with the path in the message; and a file
	// whose size was measured before it lost its tail.
	path := filepath.Join(t.TempDir(), "cut.ckpt")
	if err := os.WriteFile(path, b[:len(b)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(truncated) = %v, want an error naming %s", err, path)
	}
	if _, err := Decode(bytes.NewReader(b[:len(b)-7]), int64(len(b))); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Decode of a short stream = %v, want a truncation error", err)
	}
}

func TestFlippedBytes(t *testing.T) {
	b := encodeBytes(t, sample())
	for i := range b {
		for _, mask := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= mask
			if _, err := Decode(bytes.NewReader(c), int64(len(c))); err == nil {
				t.Fatalf("byte %d ^ %#x: no error", i, mask)
			}
		}
	}
	// A flip in the data is caught by the checksum.
	c := bytes.Clone(b)
	c[len(c)-10] ^= 0x10
	if _, err := Decode(bytes.NewReader(c), int64(len(c))); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("data flip: %v, want checksum mismatch", err)
	}
}

// craft builds a file from a header string and raw data, with a valid checksum.
func craft(version uint32, hdr string, data []byte) []byte {
	b := []byte(Magic)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	b = append(b, data...)
	return reseal(append(b, 0, 0, 0, 0))
}

func TestBadFiles(t *testing.T) {
	valid := encodeBytes(t, sample())
	wrongMagic := bytes.Clone(valid)
	copy(wrongMagic, "GGUF\x03\x00\x00\x00")
	future := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(future[8:], 2)
	reseal(future)
	hugeHeader := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(hugeHeader[12:], math.MaxUint32)
	// NaN in parameter tokens_embeddings index 4 (data starts at 16+H).
	nan := bytes.Clone(valid)
	start := 16 + int(binary.LittleEndian.Uint32(nan[12:]))
	binary.LittleEndian.PutUint32(nan[start+4*4:], math.Float32bits(float32(math.NaN())))
	reseal(nan)
	four := make([]byte, 4)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than the smallest checkpoint"},
		{"wrong magic", wrongMagic, "not an fspo checkpoint"},
		{"future version", future, "format version 2 is newer than this build reads (1)"},
		{"version 0", craft(0, `{}`, nil), "format version 0 is not valid"},
		{"huge header length", hugeHeader, "header length 4294967295 does not fit"},
		{"nan parameter", nan, "parameter tok_embeddings index 4 is NaN"},
		{"bad json", craft(1, `{"format":`, nil), "header JSON"},
		{"unknown field", craft(1, `{"format":"llama","tensors":[],"extra":1}`, nil), `unknown field "extra"`},
		{"trailing data", craft(1, `{"format":"llama","tensors":[]} x`, nil), "after the object"},
		{"no format", craft(1, `{"tensors":[]}`, nil), "format is empty"},
		{"no tensors", craft(1, `{"format":"llama"}`, nil), "tensors is missing"},
		{"negative step", craft(1, `{"format":"llama","step":-1,"tensors":[]}`, nil), "step is -1"},
		{"bad group", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[1],"group":"x","offset":0}]}`, four), `group "x"`},
		{"no name", craft(1, `{"format":"l","tensors":[{"shape":[1],"group":"params","offset":0}]}`, four), "has no name"},
		{"no shape", craft(1, `{"format":"l","tensors":[{"name":"w","group":"params","offset":0}]}`, four), "has no shape"},
		{"negative dim", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[-1,-1],"group":"params","offset":0}]}`, four), "negative dimension"},
		{"absurd shape", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[1099511627776,1099511627776],"group":"params","offset":0}]}`, four), "needs more data than the file holds"},
		{"wrong offset", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[1],"group":"params","offset":8}]}`, four), "offset 8, want 0"},
		{"too little data", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[2],"group":"params","offset":0}]}`, four), "needs more data"},
		{"extra data", craft(1, `{"format":"l","tensors":[]}`, four), "tensors hold 0 bytes but the file has 4"},
		{"duplicate", craft(1, `{"format":"l","tensors":[{"name":"w","shape":[1],"group":"params","offset":0},{"name":"w","shape":[0],"group":"params","offset":4}]}`, four), "appears twice"},
		{"params after optim", craft(1, `{"format":"l","tensors":[{"name":"m","shape":[0],"group":"optim","offset":0},{"name":"w","shape":[1],"group":"params","offset":0}]}`, four), "comes after optim"},
		{"bad rng", craft(1, `{"format":"l","rng":"***","tensors":[]}`, nil), "header JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.b), int64(len(tc.b)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Through Load, errors name the path.
	path := filepath.Join(t.TempDir(), "future.ckpt")
	if err := os.WriteFile(path, future, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "load checkpoint: "+path+": format version 2") {
		t.Errorf("Load = %v, want an error naming %s and the version", err, path)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.ckpt")); err == nil || !strings.Contains(err.Error(), "missing.ckpt") {
		t.Errorf("Load(missing) = %v, want an error naming the file", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Checkpoint)
		want string
	}{
		{"no format", func(c *Checkpoint) { c.Format = "" }, "no format"},
		{"negative step", func(c *Checkpoint) { c.Step = -3 }, "step -3"},
		{"bad config", func(c *Checkpoint) { c.Config = json.RawMessage(`{"dim":`) }, "config is not valid JSON"},
		{"unnamed", func(c *Checkpoint) { c.Params[0].Name = "" }, "params tensor 0 has no name"},
		{"duplicate", func(c *Checkpoint) { c.Optim[1].Name = c.Optim[0].Name }, "optim tensor adamw.m/norm appears twice"},
		{"shape mismatch", func(c *Checkpoint) { c.Params[1].Shape = []int{4} }, "wants 4 values, has 3"},
		{"nan param", func(c *Checkpoint) { c.Params[0].Data[5] = float32(math.NaN()) }, "parameter tok_embeddings index 5 is NaN"},
		{"bad utf-8 name", func(c *Checkpoint) { c.Optim[0].Name = "m\xff" }, "not valid UTF-8"},
		{"bad utf-8 meta", func(c *Checkpoint) { c.Meta["k"] = "\xc3" }, "not valid UTF-8"},
	}
	for _, tc := range tests {
		c := sample()
		tc.edit(c)
		if err := Encode(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Encode error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the decoder: it must return an error
// or a checkpoint that encodes and decodes back to itself, never panic.
func FuzzLoad(f *testing.F) {
	valid := encodeBytes(f, sample())
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(encodeBytes(f, &Checkpoint{Format: "llama"}))
	f.Add(craft(1, `{"format":"l","tensors":[{"name":"w","shape":[1],"group":"params","offset":0}]}`, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b)
		// With the checksum recomputed, mutations reach the code after it.
		if len(b) >= 4 {
			roundTrip(t, reseal(bytes.Clone(b)))
		}
	})
}

func roundTrip(t *testing.T, b []byte) {
	c, err := Decode(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	again := encodeBytes(t, c)
	c2, err := Decode(bytes.NewReader(again), int64(len(again)))
	if err != nil {
		t.Fatalf("re-encoded checkpoint does not decode: %v", err)
	}
	equal(t, c2, c)
}

// BenchmarkSaveLoad writes and reads a stories260K-sized checkpoint: 260K
// parameters and AdamW's two moment buffers.
func BenchmarkSaveLoad(b *testing.B) {
	c := &Checkpoint{Format: "llama", Params: []tensor.Tensor{tensor.New("w", 260, 1000)},
		Optim: []tensor.Tensor{tensor.New("adamw.m/w", 260, 1000), tensor.New("adamw.v/w", 260, 1000)}}
	for i := range c.Params[0].Data {
		c.Params[0].Data[i] = float32(i)
	}
	path := filepath.Join(b.TempDir(), "bench.ckpt")
	b.SetBytes(3 * 260000 * 4)
	for range b.N {
		if err := Save(path, c); err != nil {
			b.Fatal(err)
		}
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
