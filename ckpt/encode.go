package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"fspo/atomicfile"
	"fspo/tensor"
)

// Save writes c to path atomically (atomicfile): a crash leaves either the
// old file or the complete new one.
func Save(path string, c *Checkpoint) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return encode(w, c) }); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// Encode writes c in the checkpoint format to w.
func Encode(w io.Writer, c *Checkpoint) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	return encode(w, c)
}

// encode writes an already validated checkpoint.
func encode(w io.Writer, c *Checkpoint) error {
	h := header{Format: c.Format, Config: c.Config, Step: c.Step, RNG: c.RNG, Meta: c.Meta}
	var off int64
	add := func(group string, ts []tensor.Tensor) {
		for _, t := range ts {
			shape := t.Shape
			if shape == nil {
				shape = []int{}
			}
			h.Tensors = append(h.Tensors, entry{Name: t.Name, Shape: shape, Group: group, Offset: off})
			off += 4 * int64(len(t.Data))
		}
	}
	add(GroupParams, c.Params)
	add(GroupOptim, c.Optim)
	if h.Tensors == nil {
		h.Tensors = []entry{}
	}
	// No HTML escaping: the config must come back byte for byte.
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	js := bytes.TrimRight(hb.Bytes(), "\n")
	// Pad with spaces (valid trailing JSON whitespace) so data is 8-aligned.
	for (prefixLen+len(js))%8 != 0 {
		js = append(js, ' ')
	}
	if int64(len(js)) > math.MaxUint32 {
		return fmt.Errorf("encode header: %d bytes exceed the 4 GiB header limit", len(js))
	}
	crc := crc32.New(castagnoli)
	mw := io.MultiWriter(w, crc)
	var pre [prefixLen]byte
	copy(pre[:8], Magic)
	binary.LittleEndian.PutUint32(pre[8:12], Version)
	binary.LittleEndian.PutUint32(pre[12:16], uint32(len(js)))
	if _, err := mw.Write(pre[:]); err != nil {
		return err
	}
	if _, err := mw.Write(js); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for _, ts := range [][]tensor.Tensor{c.Params, c.Optim} {
		for _, t := range ts {
			if err := writeFloats(mw, buf, t.Data); err != nil {
				return err
			}
		}
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	_, err := w.Write(sum[:])
	return err
}

// writeFloats writes data as little-endian float32 through buf.
func writeFloats(w io.Writer, buf []byte, data []float32) error {
	per := len(buf) / 4
	for len(data) > 0 {
		n := min(per, len(data))
		for i, v := range data[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// readFloats fills data from little-endian float32 in r, through buf,
// feeding the bytes to crc.
func readFloats(r io.Reader, crc hash.Hash32, buf []byte, data []float32) error {
	per := len(buf) / 4
	for len(data) > 0 {
		n := min(per, len(data))
		b := buf[:4*n]
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		crc.Write(b)
		for i := range data[:n] {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		data = data[n:]
	}
	return nil
}
