// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian tensor data. Files are
// read memory-mapped; F32, F16 and BF16 tensors convert exactly to float32.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DType names an element type as the header spells it.
type DType string

// The element types this package converts to and from float32.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
)

// dtypeSizes holds the element size of every dtype the format defines, so
// that a header can be checked even when it holds tensors this package
// does not convert.
var dtypeSizes = map[DType]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// Supported reports whether d converts to float32.
func (d DType) Supported() bool { return d == F32 || d == F16 || d == BF16 }

// Size is the size of one element in bytes (0 for an unknown dtype).
func (d DType) Size() int { return dtypeSizes[d] }

// Info describes one tensor of a file. Begin and End are byte offsets into
// the data section (after the header).
type Info struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64
}

// Numel is the number of elements.
func (t Info) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Header is a parsed safetensors header.
type Header struct {
	Metadata map[string]string
	Tensors  []Info // in data order
	DataLen  int64  // bytes of the data section
}

// maxHeader bounds the header JSON, as the reference implementation does (100 MB).
const maxHeader = 100 << 20

// ParseHeader parses the start of a safetensors file of fileSize bytes
// (prefix holds at least the 8-byte length and the header it announces)
// and checks every tensor's range against the data section.
func ParseHeader(prefix []byte, fileSize int64) (*Header, error) {
	if fileSize < 8 || len(prefix) < 8 {
		return nil, fmt.Errorf("file of %d bytes is too short for the 8-byte header length", fileSize)
	}
	n := binary.LittleEndian.Uint64(prefix)
	if n > maxHeader {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", n, maxHeader)
	}
	if int64(n) > fileSize-8 {
		return nil, fmt.Errorf("header length %d exceeds the %d bytes after the length field", n, fileSize-8)
	}
	if int64(len(prefix)) < 8+int64(n) {
		return nil, fmt.Errorf("header length %d: only %d bytes given", n, len(prefix)-8)
	}
	h := &Header{DataLen: fileSize - 8 - int64(n)}
	if err := h.parseJSON(prefix[8 : 8+n]); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := h.checkRanges(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return h, nil
}

type rawInfo struct {
	DType       DType     `json:"dtype"`
	Shape       []int64   `json:"shape"`
	DataOffsets *[2]int64 `json:"data_offsets"`
}

// parseJSON reads the header object key by key, so that a repeated name is
// caught rather than silently replaced.
func (h *Header) parseJSON(js []byte) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("tensor %q: listed twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&h.Metadata); err != nil {
				return fmt.Errorf("__metadata__: %w", err)
			}
			continue
		}
		var ri rawInfo
		if err := dec.Decode(&ri); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := ri.info(name)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		h.Tensors = append(h.Tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the JSON object")
	}
	return nil
}

func (ri rawInfo) info(name string) (Info, error) {
	if name == "" {
		return Info{}, errors.New("empty tensor name")
	}
	size := ri.DType.Size()
	if size == 0 {
		return Info{}, fmt.Errorf("unknown dtype %q", ri.DType)
	}
	if ri.DataOffsets == nil {
		return Info{}, errors.New("no data_offsets")
	}
	t := Info{Name: name, DType: ri.DType, Begin: ri.DataOffsets[0], End: ri.DataOffsets[1]}
	numel := int64(1)
	for _, d := range ri.Shape {
		if d < 0 || d > math.MaxInt32 {
			return Info{}, fmt.Errorf("shape %v: dimension out of range", ri.Shape)
		}
		numel *= d
		if numel > math.MaxInt64/16 {
			return Info{}, fmt.Errorf("shape %v: too many elements", ri.Shape)
		}
		t.Shape = append(t.Shape, int(d))
	}
	if t.Begin < 0 || t.End < t.Begin {
		return Info{}, fmt.Errorf("data_offsets [%d, %d] are not an ordered range", t.Begin, t.End)
	}
	if want := numel * int64(size); t.End-t.Begin != want {
		return Info{}, fmt.Errorf("data_offsets [%d, %d] hold %d bytes; %s of shape %v needs %d", t.Begin, t.End, t.End-t.Begin, ri.DType, ri.Shape, want)
	}
	return t, nil
}

// checkRanges sorts the tensors by offset and checks that they lie inside
// the data section without overlapping.
func (h *Header) checkRanges() error {
	slices.SortStableFunc(h.Tensors, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.Begin, b.Begin), cmp.Compare(a.End, b.End))
	})
	var prev *Info
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if t.End > h.DataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the %d data bytes of the file", t.Name, t.Begin, t.End, h.DataLen)
		}
		if prev != nil && t.Begin < prev.End {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q [%d, %d]", t.Name, t.Begin, t.End, prev.Name, prev.Begin, prev.End)
		}
		prev = t
	}
	return nil
}

// Convertible reports, naming the tensor, a dtype that does not convert to float32.
func (t Info) Convertible() error {
	if t.DType.Supported() {
		return nil
	}
	return unsupported(t)
}

// unsupported is the error for a dtype that does not convert.
func unsupported(t Info) error {
	return fmt.Errorf("tensor %s: dtype %s is not supported (supported: %s)", t.Name, t.DType, strings.Join([]string{string(F32), string(F16), string(BF16)}, ", "))
}
