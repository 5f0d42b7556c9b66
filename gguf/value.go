package gguf

import (
	"fmt"
	"math"
	"reflect"
)

// GGUF metadata value types (gguf_type).
const (
	tUint8   = 0
	tInt8    = 1
	tUint16  = 2
	tInt16   = 3
	tUint32  = 4
	tInt32   = 5
	tFloat32 = 6
	tBool    = 7
	tString  = 8
	tArray   = 9
	tUint64  = 10
	tInt64   = 11
	tFloat64 = 12
)

// minSize is the fewest bytes a value of each type occupies.
var minSize = [...]int{1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8}

// maxArrayDepth bounds arrays of arrays.
const maxArrayDepth = 4

// elemType reads a value of one type that is not an array: one as it is,
// or n of them as a slice of its Go type.
type elemType struct {
	one  func(r *reader) any
	many func(r *reader, n uint64) any
}

// elem makes the elemType of the values read decodes.
func elem[T any](read func(r *reader) T) elemType {
	return elemType{
		one:  func(r *reader) any { return read(r) },
		many: func(r *reader, n uint64) any { return readN(r, n, func() T { return read(r) }) },
	}
}

// elemTypes holds the Go type and decoding of each value type but arrays.
var elemTypes = map[uint32]elemType{
	tUint8:   elem((*reader).u8),
	tInt8:    elem(func(r *reader) int8 { return int8(r.u8()) }),
	tUint16:  elem((*reader).u16),
	tInt16:   elem(func(r *reader) int16 { return int16(r.u16()) }),
	tUint32:  elem((*reader).u32),
	tInt32:   elem(func(r *reader) int32 { return int32(r.u32()) }),
	tFloat32: elem(func(r *reader) float32 { return math.Float32frombits(r.u32()) }),
	tBool:    elem((*reader).boolean),
	tString:  elem((*reader).str),
	tUint64:  elem((*reader).u64),
	tInt64:   elem(func(r *reader) int64 { return int64(r.u64()) }),
	tFloat64: elem(func(r *reader) float64 { return math.Float64frombits(r.u64()) }),
}

// boolean reads a bool, which is stored as the byte 0 or 1.
func (r *reader) boolean() bool {
	b := r.u8()
	if b > 1 && r.err == nil {
		r.err = fmt.Errorf("bool value %d", b)
	}
	return b == 1
}

// value reads one value of type typ.
func (r *reader) value(typ uint32, depth int) any {
	if e, ok := elemTypes[typ]; ok {
		return e.one(r)
	}
	if typ == tArray {
		if depth >= maxArrayDepth {
			r.err = fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
			return nil
		}
		return r.array(depth)
	}
	if r.err == nil {
		r.err = fmt.Errorf("unknown value type %d", typ)
	}
	return nil
}

// array reads an array: its element type, its length, then its values.
func (r *reader) array(depth int) any {
	et, n := r.u32(), r.u64()
	if r.err != nil {
		return nil
	}
	if et >= uint32(len(minSize)) {
		r.err = fmt.Errorf("array of unknown value type %d", et)
		return nil
	}
	if n > uint64(r.left()/minSize[et]) {
		r.err = fmt.Errorf("array of %d values of type %d does not fit in the %d bytes left", n, et, r.left())
		return nil
	}
	if e, ok := elemTypes[et]; ok {
		return e.many(r, n)
	}
	return readN(r, n, func() any { return r.value(tArray, depth+1) })
}

func readN[T any](r *reader, n uint64, next func() T) []T {
	out := make([]T, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, next())
	}
	return out
}

// Get returns the value of key, or nil.
func (f *File) Get(key string) any {
	if i, ok := f.kv[key]; ok {
		return f.KV[i].Value
	}
	return nil
}

// Tensor returns the named tensor, or nil.
func (f *File) Tensor(name string) *Tensor {
	if i, ok := f.tensors[name]; ok {
		return &f.Tensors[i]
	}
	return nil
}

// Uint reads an integer-valued key of any integer type.
func (f *File) Uint(key string) (uint64, bool, error) {
	v := f.Get(key)
	if v == nil {
		return 0, false, nil
	}
	var n int64
	switch rv := reflect.ValueOf(v); {
	case rv.CanInt():
		n = rv.Int()
	case rv.CanUint():
		if rv.Uint() > math.MaxInt64 {
			return 0, true, fmt.Errorf("gguf %s: %s = %d is too large", f.Path, key, rv.Uint())
		}
		n = int64(rv.Uint())
	default:
		return 0, true, fmt.Errorf("gguf %s: %s holds %T, want an integer", f.Path, key, v)
	}
	if n < 0 {
		return 0, true, fmt.Errorf("gguf %s: %s = %d is negative", f.Path, key, n)
	}
	return uint64(n), true, nil
}

// Float reads a float32 or float64 key.
func (f *File) Float(key string) (float64, bool, error) {
	switch x := f.Get(key).(type) {
	case nil:
		return 0, false, nil
	case float32:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	default:
		return 0, true, fmt.Errorf("gguf %s: %s holds %T, want a float", f.Path, key, x)
	}
}

// String reads a string key.
func (f *File) String(key string) (string, bool, error) {
	switch x := f.Get(key).(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	default:
		return "", true, fmt.Errorf("gguf %s: %s holds %T, want a string", f.Path, key, x)
	}
}
