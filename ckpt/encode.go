package ckpt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"

	"fspo/tensor"
)

// Save writes c to path atomically: it writes a temporary file in the same
// folder, syncs it, renames it over path and syncs the folder, so a crash
// leaves either the old file or the complete new one.
func Save(path string, c *Checkpoint) (err error) {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("save checkpoint %s: %w", path, err)
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := encode(bw, c); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return d.Close()
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
