package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"fspo/fileio"
)

// File is a safetensors file mapped into memory. Its methods are not safe
// for concurrent use with Close.
type File struct {
	Path string
	Header
	byName map[string]int
	mem    []byte // the whole file, mapped read-only
	unmap  func() error
	data   []byte // the data section of mem
}

// Open maps path and parses its header.
func Open(path string) (*File, error) {
	mem, release, err := fileio.Map(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := int64(len(mem))
	if size < 8 {
		release()
		return nil, fmt.Errorf("safetensors %s: file of %d bytes is too short for the 8-byte header length", path, size)
	}
	h, err := ParseHeader(mem, size)
	if err != nil {
		release()
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	sf := &File{Path: path, Header: *h, mem: mem, unmap: release, data: mem[size-h.DataLen:], byName: map[string]int{}}
	for i, t := range sf.Tensors {
		sf.byName[t.Name] = i
	}
	return sf, nil
}

// Close unmaps the file; the slices returned by Raw become invalid.
func (f *File) Close() error {
	if f.mem == nil {
		return nil
	}
	err := f.unmap()
	f.mem, f.data = nil, nil
	if err != nil {
		return fmt.Errorf("safetensors %s: unmap: %w", f.Path, err)
	}
	return nil
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Info{}, false
	}
	return f.Tensors[i], true
}

// Raw returns the named tensor's bytes (inside the mapping).
func (f *File) Raw(name string) ([]byte, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("safetensors %s: tensor %s: %w", f.Path, name, ErrNotFound)
	}
	if f.data == nil {
		return nil, fmt.Errorf("safetensors %s: closed", f.Path)
	}
	return f.data[t.Begin:t.End], nil
}

// ReadF32 converts the named tensor into dst, which must hold exactly its
// elements, then tells the kernel the mapped pages are no longer needed, so
// that reading a file tensor by tensor keeps at most one tensor's pages
// resident.
func (f *File) ReadF32(name string, dst []float32) error {
	raw, t, err := f.convertible(name)
	if err != nil {
		return err
	}
	if int64(len(dst)) != t.Numel() {
		return fmt.Errorf("safetensors %s: tensor %s: has %d elements (shape %v), want %d", f.Path, name, t.Numel(), t.Shape, len(dst))
	}
	f.advise(t, advicePopulate) // map the pages in one call instead of faulting them one by one
	decode(t.DType, raw, dst)
	f.release(t)
	return nil
}

// convertible returns the bytes and description of tensor name, which
// must be of a type ReadF32 converts.
func (f *File) convertible(name string) ([]byte, Info, error) {
	raw, err := f.Raw(name)
	if err != nil {
		return nil, Info{}, err
	}
	t, _ := f.Info(name)
	if err := t.Convertible(); err != nil {
		return nil, t, fmt.Errorf("safetensors %s: %w", f.Path, err)
	}
	return raw, t, nil
}

// ReadF32At decodes len(dst) elements of tensor name, from element off on,
// into float32 (for reading a large tensor a block of rows at a time;
// Release drops its pages afterwards).
func (f *File) ReadF32At(name string, off int64, dst []float32) error {
	raw, t, err := f.convertible(name)
	if err != nil {
		return err
	}
	if off < 0 || off+int64(len(dst)) > t.Numel() {
		return fmt.Errorf("safetensors %s: tensor %s: elements [%d, %d) of %d", f.Path, name, off, off+int64(len(dst)), t.Numel())
	}
	size := int64(t.DType.Size())
	decode(t.DType, raw[off*size:(off+int64(len(dst)))*size], dst)
	return nil
}

// ReadBits copies the elements of an F16 or BF16 tensor into dst as they
// are stored (no conversion), and drops its pages afterwards.
func (f *File) ReadBits(name string, dst []uint16) error {
	raw, err := f.Raw(name)
	if err != nil {
		return err
	}
	t, _ := f.Info(name)
	if t.DType != F16 && t.DType != BF16 {
		return fmt.Errorf("safetensors %s: tensor %s is %s, not F16 or BF16", f.Path, name, t.DType)
	}
	if int64(len(dst)) != t.Numel() {
		return fmt.Errorf("safetensors %s: tensor %s: has %d elements (shape %v), want %d", f.Path, name, t.Numel(), t.Shape, len(dst))
	}
	f.advise(t, advicePopulate)
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	f.release(t)
	return nil
}

// Release drops the resident pages of tensor name (after reading it with
// ReadF32At).
func (f *File) Release(name string) {
	if t, ok := f.Info(name); ok {
		f.release(t)
	}
}

// release drops the resident pages of t's range (whole pages only).
func (f *File) release(t Info) { f.advise(t, adviceDontNeed) }

// advise gives the kernel advice about the whole pages of t's range.
// Advice only: a failure changes speed or memory use, not results.
func (f *File) advise(t Info, advice int) {
	page := int64(os.Getpagesize())
	off := int64(len(f.mem)) - f.DataLen // file offset of the data section
	lo := (off + t.Begin + page - 1) / page * page
	hi := (off + t.End) / page * page
	if hi > lo {
		advise(f.mem[lo:hi], advice)
	}
}

// ErrNotFound is returned (wrapped) for a tensor that is not in a file.
var ErrNotFound = errors.New("tensor not found")
