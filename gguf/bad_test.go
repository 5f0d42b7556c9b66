package gguf

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

func writeBytes(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := w.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawInfo is a tensor info written verbatim, to build files the Writer refuses.
type rawInfo struct {
	name   string
	dims   []uint64
	typ    uint32
	offset uint64
}

// rawFile builds a GGUF file from metadata, tensor infos and a data section of dataLen zero bytes.
func rawFile(kvs []KV, infos []rawInfo, dataLen int) []byte {
	le := binary.LittleEndian
	b := append([]byte(Magic), 3, 0, 0, 0)
	b = le.AppendUint64(b, uint64(len(infos)))
	b = le.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b, _ = appendKV(b, kv)
	}
	for _, t := range infos {
		b = appendString(b, t.name)
		b = le.AppendUint32(b, uint32(len(t.dims)))
		for _, d := range t.dims {
			b = le.AppendUint64(b, d)
		}
		b = le.AppendUint32(b, t.typ)
		b = le.AppendUint64(b, t.offset)
	}
	b = append(b, make([]byte, int(pad(uint64(len(b)), 32))-len(b))...)
	return append(b, make([]byte, dataLen)...)
}

// smallModel is a valid GGUF model file.
func smallModel(t testing.TB) []byte {
	c := testConfigs["qwen2-bias"]
	w, err := ModelWriter(c, randomParams(c, 3), testTokenizer(c.Vocab), WriteOptions{Type: Q8_0})
	if err != nil {
		t.Fatal(err)
	}
	return writeBytes(t, w)
}

func TestBadFiles(t *testing.T) {
	good := smallModel(t)
	patch := func(off int, v uint64, n int) []byte {
		b := bytes.Clone(good)
		for i := range n {
			b[off+i] = byte(v >> (8 * i))
		}
		return b
	}
	arch := []KV{{"general.architecture", "llama"}}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"bad magic", append([]byte("GGUG"), good[4:]...), "bad magic"},
		{"version 1", patch(4, 1, 4), "version 1 is not supported"},
		{"version 4", patch(4, 4, 4), "version 4 is not supported"},
		{"absurd tensor count", patch(8, 1<<62, 8), "do not fit"},
		{"absurd kv count", patch(16, 1<<62, 8), "do not fit"},
		{"absurd key length", patch(24, 1<<62, 8), "truncated"},
		{"unsupported type", rawFile(arch, []rawInfo{{"blk.0.attn_q.weight", []uint64{32, 2}, 2, 0}}, 64), `"blk.0.attn_q.weight": tensor type 2 (Q4_0) is not supported`},
		{"unknown type", rawFile(arch, []rawInfo{{"x", []uint64{4}, 99, 0}}, 64), "tensor type 99 (type99)"},
		{"offset outside", rawFile(arch, []rawInfo{{"x", []uint64{4}, 0, 64}}, 64), "beyond the end of the file"},
		{"huge offset", rawFile(arch, []rawInfo{{"x", []uint64{4}, 0, 1 << 63}}, 64), "beyond the end of the file"},
		{"misaligned", rawFile(arch, []rawInfo{{"x", []uint64{4}, 0, 4}}, 64), "not a multiple of the alignment"},
		{"overlap", rawFile(arch, []rawInfo{{"a", []uint64{16}, 0, 0}, {"b", []uint64{4}, 0, 32}}, 128), `tensor "b" at data offset 32 overlaps tensor "a" ending at 64`},
		{"duplicate tensor", rawFile(arch, []rawInfo{{"a", []uint64{4}, 0, 0}, {"a", []uint64{4}, 0, 32}}, 64), "appears twice"},
		{"zero dim", rawFile(arch, []rawInfo{{"a", []uint64{0}, 0, 0}}, 64), "zero or too many"},
		{"five dims", rawFile(arch, []rawInfo{{"a", []uint64{1, 1, 1, 1, 1}, 0, 0}}, 64), "5 dimensions"},
		{"huge dims", rawFile(arch, []rawInfo{{"a", []uint64{1 << 32, 1 << 32}, 0, 0}}, 64), "zero or too many"},
		{"partial q8 block", rawFile(arch, []rawInfo{{"a", []uint64{16}, 8, 0}}, 64), "not a multiple of its block of 32"},
		{"bad alignment", rawFile([]KV{{"general.alignment", uint32(3)}}, nil, 0), "general.alignment 3"},
		{"duplicate key", rawFile([]KV{{"a", "x"}, {"a", "y"}}, nil, 0), `key "a" appears twice`},
	}
	for _, c := range cases {
		_, err := Parse("bad.gguf", c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf bad.gguf: offset ") {
			t.Errorf("%s: error %v, want one naming the file, an offset and %q", c.name, err, c.want)
		}
	}
	for n := range len(good) {
		if _, err := Parse("cut.gguf", good[:n]); err == nil {
			t.Fatalf("a file cut to %d of %d bytes parsed", n, len(good))
		}
	}
}

func TestBadModels(t *testing.T) {
	c := testConfigs["llama-gqa-untied"]
	p := randomParams(c, 4)
	base := func() *Writer {
		w, err := ModelWriter(c, p, testTokenizer(c.Vocab), WriteOptions{Type: F32})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	setKV := func(key string, v any) func(*Writer) {
		return func(w *Writer) {
			for i := range w.KV {
				if w.KV[i].Key == key {
					w.KV[i].Value = v
				}
			}
		}
	}
	cases := []struct {
		name   string
		mutate func(*Writer)
		want   string
	}{
		{"arch", setKV("general.architecture", "gemma"), `general.architecture "gemma" is not supported (supported: llama, qwen2, qwen3)`},
		{"hidden", setKV("llama.feed_forward_length", uint32(32)), "tensor blk.0.ffn_gate.weight has shape [96 64], the config wants [32 64]"},
		{"heads", setKV("llama.attention.head_count_kv", uint32(3)), "n_heads 4 is not a multiple of n_kv_heads 3"},
		{"eps type", setKV("llama.attention.layer_norm_rms_epsilon", "small"), "llama.attention.layer_norm_rms_epsilon holds string, want a float"},
		{"missing", func(w *Writer) { w.KV = w.KV[:1] }, "llama.embedding_length is missing"},
		{"rope scaling", func(w *Writer) { w.Add("llama.rope.scaling.type", "yarn") }, `rope.scaling.type "yarn" is not supported`},
		{"partial rope", setKV("llama.rope.dimension_count", uint32(8)), "partial RoPE is not supported"},
		{"tokens", func(w *Writer) { w.Add("tokenizer.ggml.eos_token_id", uint32(99)) }, "key \"tokenizer.ggml.eos_token_id\" appears twice"},
		{"extra tensor", func(w *Writer) { w.AddTensor("blk.0.attn_q.bias", F32, []int{64}, make([]float32, 64)) }, "tensor blk.0.attn_q.bias is not part of a llama model"},
		{"missing tensor", func(w *Writer) {
			w.tensors = slices.DeleteFunc(w.tensors, func(t wtensor) bool { return t.name == "blk.1.ffn_up.weight" })
		}, "tensor blk.1.ffn_up.weight is missing"},
		{"nan", func(w *Writer) { w.tensors[1].data = []float32{float32(nan())} }, "is NaN"},
	}
	for _, cs := range cases {
		w := base()
		cs.mutate(w)
		if cs.name == "nan" {
			w.tensors[1].data = append([]float32{float32(nan())}, p.RmsAtt[1:c.Dim]...)
		}
		data := writeBytes(t, w)
		f, err := Parse("bad.gguf", data)
		if err == nil {
			_, _, err = ReadModel(f)
		}
		if err == nil || !strings.Contains(err.Error(), cs.want) || !strings.Contains(err.Error(), "bad.gguf") {
			t.Errorf("%s: error %v, want one naming the file and %q", cs.name, err, cs.want)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func FuzzRead(f *testing.F) {
	f.Add(smallModel(f))
	f.Add(rawFile([]KV{{"general.architecture", "qwen3"}, {"a", []string{"x"}}}, []rawInfo{{"x", []uint64{32}, 8, 0}}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.gguf", data)
		if err != nil {
			return
		}
		for i := range file.Tensors {
			file.Tensors[i].Float32()
		}
		ReadModel(file)
		ReadTokenizer(file)
	})
}
