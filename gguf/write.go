package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

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
func valueType(v any) (uint32, bool) {
	switch v.(type) {
	case uint8:
		return tUint8, true
	case int8:
		return tInt8, true
	case uint16:
		return tUint16, true
	case int16:
		return tInt16, true
	case uint32:
		return tUint32, true
	case int32:
		return tInt32, true
	case float32:
		return tFloat32, true
	case bool:
		return tBool, true
	case string:
		return tString, true
	case uint64:
		return tUint64, true
	case int64:
		return tInt64, true
	case float64:
		return tFloat64, true
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return tArray, true
	}
	return 0, false
}

func appendValue(b []byte, v any) []byte {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, x)
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	case []uint8:
		return appendArray(b, tUint8, x)
	case []int8:
		return appendArray(b, tInt8, x)
	case []uint16:
		return appendArray(b, tUint16, x)
	case []int16:
		return appendArray(b, tInt16, x)
	case []uint32:
		return appendArray(b, tUint32, x)
	case []int32:
		return appendArray(b, tInt32, x)
	case []float32:
		return appendArray(b, tFloat32, x)
	case []bool:
		return appendArray(b, tBool, x)
	case []string:
		return appendArray(b, tString, x)
	case []uint64:
		return appendArray(b, tUint64, x)
	case []int64:
		return appendArray(b, tInt64, x)
	case []float64:
		return appendArray(b, tFloat64, x)
	}
	panic(fmt.Sprintf("gguf: appendValue %T", v))
}

func appendArray[T any](b []byte, et uint32, xs []T) []byte {
	b = binary.LittleEndian.AppendUint32(b, et)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(xs)))
	for _, x := range xs {
		b = appendValue(b, x)
	}
	return b
}
