package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"reflect"

	"fspo/atomicfile"
)

// Writer collects metadata and tensors and writes them as GGUF v3.
type Writer struct {
	KV      []KV
	tensors []wtensor
}

type wtensor struct {
	name  string
	dims  []uint64 // innermost first
	typ   TensorType
	data  []float32
	bytes uint64
}

// Add appends a metadata pair; value is one of the types KV documents
// (arrays of arrays aside).
func (w *Writer) Add(key string, value any) { w.KV = append(w.KV, KV{key, value}) }

// AddTensor appends a tensor of row-major shape (outermost first) whose
// values x are stored as typ.
func (w *Writer) AddTensor(name string, typ TensorType, shape []int, x []float32) error {
	block, _, ok := typ.layout()
	if !ok {
		return fmt.Errorf("tensor %s: type %s cannot be written", name, typ)
	}
	if len(shape) == 0 || len(shape) > maxDims {
		return fmt.Errorf("tensor %s: %d dimensions (want 1..%d)", name, len(shape), maxDims)
	}
	dims := make([]uint64, len(shape))
	n := 1
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("tensor %s: shape %v", name, shape)
		}
		dims[len(shape)-1-i] = uint64(d)
		n *= d
	}
	if n != len(x) {
		return fmt.Errorf("tensor %s: shape %v holds %d values, got %d", name, shape, n, len(x))
	}
	if dims[0]%uint64(block) != 0 {
		return fmt.Errorf("tensor %s: rows of %d values are not a multiple of %s's block of %d", name, dims[0], typ, block)
	}
	w.tensors = append(w.tensors, wtensor{name, dims, typ, x, typ.rowBytes(uint64(n))})
	return nil
}

// WriteFile writes the file atomically.
func (w *Writer) WriteFile(path string) error {
	return atomicfile.Write(path, func(out io.Writer) error { return w.Write(out) })
}

// Write writes the file to out.
func (w *Writer) Write(out io.Writer) error {
	align := uint64(DefaultAlignment)
	var b []byte
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(w.tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(w.KV)))
	var err error
	for _, kv := range w.KV {
		if b, err = appendKV(b, kv); err != nil {
			return err
		}
	}
	var off uint64
	for _, t := range w.tensors {
		b = appendString(b, t.name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.dims)))
		for _, d := range t.dims {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.typ))
		b = binary.LittleEndian.AppendUint64(b, off)
		off += pad(t.bytes, align)
	}
	b = append(b, make([]byte, pad(uint64(len(b)), align)-uint64(len(b)))...)
	if _, err := out.Write(b); err != nil {
		return err
	}
	for _, t := range w.tensors {
		b = encode(t.typ, t.data, b[:0])
		b = append(b, make([]byte, pad(t.bytes, align)-t.bytes)...)
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func pad(n, align uint64) uint64 { return (n + align - 1) / align * align }

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendKV(b []byte, kv KV) ([]byte, error) {
	b = appendString(b, kv.Key)
	typ, ok := valueType(kv.Value)
	if !ok {
		return nil, fmt.Errorf("gguf: key %s: cannot write a %T", kv.Key, kv.Value)
	}
	b = binary.LittleEndian.AppendUint32(b, typ)
	return appendValue(b, kv.Value), nil
}

// valueType gives the GGUF type of a Go value; for a slice, tArray.
// scalarTypes is the GGUF value type of each kind of Go value a KV may hold
// (alone, or as the elements of an array: a slice of them).
var scalarTypes = map[reflect.Kind]uint32{
	reflect.Uint8: tUint8, reflect.Int8: tInt8, reflect.Uint16: tUint16, reflect.Int16: tInt16,
	reflect.Uint32: tUint32, reflect.Int32: tInt32, reflect.Float32: tFloat32, reflect.Bool: tBool,
	reflect.String: tString, reflect.Uint64: tUint64, reflect.Int64: tInt64, reflect.Float64: tFloat64,
}

func valueType(v any) (uint32, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		_, ok := scalarTypes[rv.Type().Elem().Kind()]
		return tArray, ok
	}
	t, ok := scalarTypes[rv.Kind()]
	return t, ok
}

// appendValue appends v (a type valueType accepts) as GGUF stores it:
// little-endian numbers, a bool as one byte 0 or 1, a string as its length
// and bytes, an array as its element type, length and elements.
func appendValue(b []byte, v any) []byte {
	le := binary.LittleEndian
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.String:
		return appendString(b, rv.String())
	case rv.Kind() == reflect.Slice:
		b = le.AppendUint32(b, scalarTypes[rv.Type().Elem().Kind()])
		b = le.AppendUint64(b, uint64(rv.Len()))
		if rv.Type().Elem().Kind() == reflect.String {
			for i := range rv.Len() {
				b = appendString(b, rv.Index(i).String())
			}
			return b
		}
	}
	b, err := binary.Append(b, le, v)
	if err != nil {
		panic(fmt.Sprintf("gguf: appendValue %T: %v", v, err))
	}
	return b
}
