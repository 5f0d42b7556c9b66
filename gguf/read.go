// Package gguf reads and writes GGUF files (the model format of llama.cpp,
// version 3, and the identical little-endian version 2) and maps them to the
// project's model: Llama, Qwen2 and Qwen3 weights, their tokenizer
// metadata and chat template, and LoRA adapters.
//
// File layout (GGUF spec, ggml docs/gguf.md): the magic "GGUF", a uint32
// version, uint64 tensor and key-value counts, the key-value pairs (a
// string key, a uint32 value type, the value), the tensor infos (name,
// uint32 dimension count, uint64 dimensions innermost first, uint32 ggml
// type, uint64 offset into the data section), then padding to the alignment
// (general.alignment, default 32) and the data section. Strings are a uint64
// length and bytes; arrays a uint32 element type, a uint64 count and the
// elements. Every integer is little-endian.
package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"fspo/fileio"
)

// Magic starts every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// KV is one metadata pair. Value holds uint8, int8, uint16, int16, uint32,
// int32, uint64, int64, float32, float64, bool or string, or an array as a
// slice of one of these ([]string, []float32, []int32, …; an array of
// arrays is []any).
type KV struct {
	Key   string
	Value any
}

// Tensor is one tensor's info and its bytes (a view of the file).
type Tensor struct {
	Name string
	// Dims are ggml's ne: the innermost (fastest varying) dimension first,
	// so a (rows, cols) row-major matrix has Dims [cols, rows].
	Dims   []uint64
	Type   TensorType
	Offset uint64 // from the start of the data section
	Data   []byte
}

// Shape is the row-major shape (outermost first): Dims reversed.
func (t *Tensor) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	return s
}

// Numel is the number of values.
func (t *Tensor) Numel() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Float32 dequantizes the tensor into a new slice (row-major).
func (t *Tensor) Float32() []float32 {
	out := make([]float32, t.Numel())
	decode(t.Type, t.Data, out)
	return out
}

// File is a parsed GGUF file. Tensor data stays in the mapped file: Close
// releases it, after which the Data of its tensors must not be used.
type File struct {
	Path      string
	Version   uint32
	KV        []KV
	Tensors   []Tensor
	Alignment uint64

	kv      map[string]int
	tensors map[string]int
	unmap   func() error
}

// Open memory-maps and parses a GGUF file.
func Open(path string) (*File, error) {
	data, release, err := fileio.Map(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.unmap = release
	return f, nil
}

// Close releases the mapped data (a no-op for a File from Parse).
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	return u()
}

// Parse reads a GGUF file held in data; name is used in errors. The tensors'
// Data are views of data.
func Parse(name string, data []byte) (*File, error) {
	r := &reader{data: data}
	f, err := parse(r, data)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: offset %d: %w", name, r.field, err)
	}
	f.Path = name
	return f, nil
}

func parse(r *reader, data []byte) (*File, error) {
	if magic := r.bytes(4); r.err != nil {
		return nil, r.err
	} else if string(magic) != Magic {
		return nil, fmt.Errorf("bad magic: not a GGUF file")
	}
	f := &File{Version: r.u32(), kv: map[string]int{}, tensors: map[string]int{}, Alignment: DefaultAlignment}
	if r.err == nil && f.Version != 2 && f.Version != 3 {
		return nil, fmt.Errorf("GGUF version %d is not supported (supported: 2, 3)", f.Version)
	}
	nt, nkv := r.u64(), r.u64()
	// Each pair takes at least 12 bytes, each tensor info 24: larger counts
	// cannot fit in the file and would only make us allocate.
	if r.err == nil && (nkv > uint64(r.left())/12 || nt > uint64(r.left())/24) {
		return nil, fmt.Errorf("counts of %d key-value pairs and %d tensors do not fit in %d bytes", nkv, nt, len(data))
	}
	for i := uint64(0); i < nkv && r.err == nil; i++ {
		r.mark()
		key := r.str()
		v := r.value(r.u32(), 0)
		if r.err != nil {
			return nil, fmt.Errorf("key-value pair %d %q: %w", i, key, r.err)
		}
		if _, dup := f.kv[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		f.kv[key] = len(f.KV)
		f.KV = append(f.KV, KV{key, v})
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := f.readAlignment(); err != nil {
		return nil, err
	}
	for i := uint64(0); i < nt; i++ {
		r.mark()
		t, err := r.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d %q: %w", i, t.Name, err)
		}
		if _, dup := f.tensors[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		f.tensors[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	start := (uint64(r.off) + f.Alignment - 1) / f.Alignment * f.Alignment
	r.field = int(min(start, uint64(len(data))))
	return f, f.placeTensors(data, start)
}

func (f *File) readAlignment() error {
	i, ok := f.kv["general.alignment"]
	if !ok {
		return nil
	}
	a, ok := f.KV[i].Value.(uint32)
	if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
		return fmt.Errorf("general.alignment %v: want a uint32 power of two up to 2^20", f.KV[i].Value)
	}
	f.Alignment = uint64(a)
	return nil
}

// placeTensors checks each tensor's offset, alignment and extent and attaches its bytes.
func (f *File) placeTensors(data []byte, start uint64) error {
	if start > uint64(len(data)) {
		if len(f.Tensors) == 0 {
			return nil
		}
		return fmt.Errorf("data section at %d starts beyond the end of the file (%d bytes)", start, len(data))
	}
	avail := uint64(len(data)) - start
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpU64(f.Tensors[a].Offset, f.Tensors[b].Offset) })
	var prevEnd uint64
	prev := ""
	for _, i := range order {
		t := &f.Tensors[i]
		size := t.Type.rowBytes(t.Numel())
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > avail || size > avail-t.Offset {
			return fmt.Errorf("tensor %q: bytes %d..%d of the data section lie beyond the end of the file (data section holds %d bytes from offset %d)", t.Name, t.Offset, t.Offset+size, avail, start)
		}
		if prev != "" && t.Offset < prevEnd {
			return fmt.Errorf("tensor %q at data offset %d overlaps tensor %q ending at %d", t.Name, t.Offset, prev, prevEnd)
		}
		t.Data = data[start+t.Offset : start+t.Offset+size : start+t.Offset+size]
		prevEnd, prev = t.Offset+size, t.Name
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reader decodes little-endian fields; the first failure sticks in err.
type reader struct {
	data  []byte
	off   int
	field int // where the item being read started, for errors
	err   error
}

func (r *reader) mark()     { r.field = r.off }
func (r *reader) left() int { return len(r.data) - r.off }

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(r.left()) {
		r.err = fmt.Errorf("truncated: need %d bytes at offset %d, file has %d", n, r.off, len(r.data))
		r.off = len(r.data)
		return nil
	}
	b := r.data[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}
func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}
func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}
func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}
func (r *reader) str() string { return string(r.bytes(r.u64())) }

func (r *reader) tensorInfo() (Tensor, error) {
	t := Tensor{Name: r.str()}
	nd := r.u32()
	if r.err == nil && (nd == 0 || nd > maxDims) {
		return t, fmt.Errorf("%d dimensions (want 1..%d)", nd, maxDims)
	}
	n := uint64(1)
	for range nd {
		d := r.u64()
		if r.err == nil && (d == 0 || d > math.MaxInt64/n || n*d > 1<<40) {
			return t, fmt.Errorf("dimensions %v…%d: zero or too many values", t.Dims, d)
		}
		n *= d
		t.Dims = append(t.Dims, d)
	}
	t.Type = TensorType(r.u32())
	t.Offset = r.u64()
	if r.err != nil {
		return t, r.err
	}
	block, _, ok := t.Type.layout()
	if !ok {
		return t, fmt.Errorf("tensor type %d (%s) is not supported (supported: F32, F16, BF16, Q8_0)", uint32(t.Type), t.Type)
	}
	if t.Dims[0]%uint64(block) != 0 {
		return t, fmt.Errorf("%s rows of %d values are not a multiple of its block of %d", t.Type, t.Dims[0], block)
	}
	return t, nil
}
