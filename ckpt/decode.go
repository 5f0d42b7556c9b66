package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"fspo/fileio"
	"fspo/tensor"
)

// Load reads and fully validates the checkpoint at path: magic, version,
// header, tensor directory against the file size, checksum, and finite
// parameters. Allocations are bounded by the file size.
func Load(path string) (*Checkpoint, error) {
	c, err := fileio.Decode(path, Decode)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	return c, nil
}

// Sniff tells whether the file at path starts with the checkpoint magic
// (for loaders choosing a format); a file shorter than the magic is not a
// checkpoint.
func Sniff(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(Magic))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return n == len(head) && string(head) == Magic, nil
}

// Decode reads a checkpoint of exactly size bytes from r, with the checks
// of Load.
func Decode(r io.Reader, size int64) (*Checkpoint, error) {
	const minSize = prefixLen + 4
	if size < minSize {
		return nil, fmt.Errorf("file is %d bytes, shorter than the smallest checkpoint (%d bytes): truncated or not a checkpoint", size, minSize)
	}
	crc := crc32.New(castagnoli)
	var pre [prefixLen]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("read file prefix: %w", truncated(err))
	}
	crc.Write(pre[:])
	if string(pre[:8]) != Magic {
		return nil, fmt.Errorf("magic bytes %q are not %q: not an fspo checkpoint", pre[:8], Magic)
	}
	switch v := binary.LittleEndian.Uint32(pre[8:12]); {
	case v > Version:
		return nil, fmt.Errorf("format version %d is newer than this build reads (%d): update fspo", v, Version)
	case v != Version:
		return nil, fmt.Errorf("format version %d is not valid (want %d)", v, Version)
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[12:16]))
	if hlen > size-minSize {
		return nil, fmt.Errorf("header length %d does not fit in a file of %d bytes", hlen, size)
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(r, hbuf); err != nil {
		return nil, fmt.Errorf("read header: %w", truncated(err))
	}
	crc.Write(hbuf)
	h, err := parseHeader(hbuf)
	if err != nil {
		return nil, err
	}
	dataLen := size - minSize - hlen
	if err := checkDirectory(h.Tensors, dataLen); err != nil {
		return nil, err
	}

	c := &Checkpoint{Format: h.Format, Config: h.Config, Step: h.Step, RNG: h.RNG, Meta: h.Meta}
	buf := make([]byte, min(64<<10, dataLen+4))
	for _, e := range h.Tensors {
		t := tensor.Tensor{Name: e.Name, Shape: e.Shape, Data: make([]float32, e.numel)}
		if err := readFloats(r, crc, buf, t.Data); err != nil {
			return nil, fmt.Errorf("read tensor %s: %w", e.Name, truncated(err))
		}
		if e.Group == GroupParams {
			c.Params = append(c.Params, t)
		} else {
			c.Optim = append(c.Optim, t)
		}
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("read checksum: %w", truncated(err))
	}
	if got, want := crc.Sum32(), binary.LittleEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("checksum mismatch (file says %08x, contents give %08x): the file is corrupt", want, got)
	}
	if n, _ := r.Read(sum[:1]); n != 0 {
		return nil, fmt.Errorf("data continues after the checksum: the file is longer than %d bytes", size)
	}
	for _, t := range c.Params {
		if err := checkFinite(t); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// truncated names an early end of file as truncation.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("unexpected end of file: the checkpoint is truncated")
	}
	return err
}

// dirEntry is a directory entry with its element count, once checked.
type dirEntry struct {
	entry
	numel int64
}

// decodedHeader is a parsed header with checked directory entries.
type decodedHeader struct {
	header
	Tensors []dirEntry
}

// parseHeader decodes the JSON header strictly: unknown fields and
// anything but whitespace after the object are errors.
func parseHeader(b []byte) (*decodedHeader, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h header
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("header JSON: unexpected data after the object at byte %d", dec.InputOffset())
	}
	if h.Format == "" {
		return nil, fmt.Errorf("header: field format is empty")
	}
	if h.Step < 0 {
		return nil, fmt.Errorf("header: field step is %d, want >= 0", h.Step)
	}
	if h.Tensors == nil {
		return nil, fmt.Errorf("header: field tensors is missing")
	}
	if len(h.Config) > 0 {
		// Store the config compacted, as the encoder writes it.
		var c bytes.Buffer
		if err := json.Compact(&c, h.Config); err != nil {
			return nil, fmt.Errorf("header: field config: %w", err)
		}
		h.Config = c.Bytes()
	}
	if len(h.Meta) == 0 {
		h.Meta = nil
	}
	d := &decodedHeader{header: h, Tensors: make([]dirEntry, len(h.Tensors))}
	for i, e := range h.Tensors {
		d.Tensors[i] = dirEntry{entry: e}
	}
	return d, nil
}

// checkDirectory checks names, groups and shapes, and that the tensors
// tile the dataLen bytes of data exactly, in order, without gaps.
func checkDirectory(ts []dirEntry, dataLen int64) error {
	seen := map[string]bool{}
	var off int64
	optimSeen := false
	for i := range ts {
		e := &ts[i]
		if e.Name == "" {
			return fmt.Errorf("header: tensor %d has no name", i)
		}
		switch e.Group {
		case GroupParams:
			if optimSeen {
				return fmt.Errorf("header: params tensor %s comes after optim tensors", e.Name)
			}
		case GroupOptim:
			optimSeen = true
		default:
			return fmt.Errorf("header: tensor %s has group %q, want %q or %q", e.Name, e.Group, GroupParams, GroupOptim)
		}
		key := e.Group + "\x00" + e.Name
		if seen[key] {
			return fmt.Errorf("header: %s tensor %s appears twice", e.Group, e.Name)
		}
		seen[key] = true
		if e.Shape == nil {
			return fmt.Errorf("header: tensor %s has no shape", e.Name)
		}
		// Count elements without overflow: every partial product must stay
		// within the data that is actually in the file.
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("header: tensor %s has negative dimension in shape %v", e.Name, e.Shape)
			}
			if d != 0 && n > dataLen/4/int64(d) {
				return fmt.Errorf("header: tensor %s shape %v needs more data than the file holds (%d bytes)", e.Name, e.Shape, dataLen)
			}
			n *= int64(d)
		}
		if e.Offset != off {
			return fmt.Errorf("header: tensor %s offset %d, want %d (tensors must be contiguous in directory order)", e.Name, e.Offset, off)
		}
		if 4*n > dataLen-off {
			return fmt.Errorf("header: tensor %s (%d bytes at offset %d) runs past the end of the data (%d bytes)", e.Name, 4*n, off, dataLen)
		}
		e.numel = n
		off += 4 * n
	}
	if off != dataLen {
		return fmt.Errorf("header: tensors hold %d bytes but the file has %d bytes of data: truncated or corrupt", off, dataLen)
	}
	return nil
}
