package safetensors

import (
	"encoding/json"
	"fmt"
	"io"

	"fspo/atomicfile"
)

// Tensor is one tensor to write: its float32 values, stored as DType. The
// values come from Data, or, for tensors too large to hold at once, from
// Fill, called for consecutive chunks (dst is the chunk, off its first
// element's index).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []float32
	Fill  func(off int, dst []float32)
}

// chunk is how many elements Write converts at a time.
const chunk = 1 << 20

// Write replaces path (atomically) with a safetensors file holding ts in
// the given order, and metadata (may be nil).
func Write(path string, metadata map[string]string, ts []Tensor) error {
	header, err := encodeHeader(metadata, ts)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(header); err != nil {
			return err
		}
		buf := make([]byte, 0, 4*chunk)
		vals := make([]float32, chunk)
		for _, t := range ts {
			n := numel(t.Shape)
			for off := 0; off < n; off += chunk {
				part := vals[:min(chunk, n-off)]
				if t.Data != nil {
					part = t.Data[off : off+len(part)]
				} else {
					t.Fill(off, part)
				}
				if _, err := w.Write(encode(t.DType, buf[:0], part)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// encodeHeader lays the tensors out back to back and returns the length
// field and the JSON header, padded with spaces to a multiple of 8 bytes so
// that the data section is aligned.
func encodeHeader(metadata map[string]string, ts []Tensor) ([]byte, error) {
	var js []byte
	js = append(js, '{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		js = append(js, `"__metadata__":`...)
		js = append(js, m...)
	}
	var off int64
	seen := map[string]bool{}
	for _, t := range ts {
		if !t.DType.Supported() {
			return nil, unsupported(Info{Name: t.Name, DType: t.DType})
		}
		if seen[t.Name] || t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("tensor %q: empty, reserved or repeated name", t.Name)
		}
		seen[t.Name] = true
		n := numel(t.Shape)
		if (t.Data == nil) == (t.Fill == nil) || t.Data != nil && len(t.Data) != n {
			return nil, fmt.Errorf("tensor %s: want Data of %d values (shape %v) or Fill", t.Name, n, t.Shape)
		}
		end := off + int64(n*t.DType.Size())
		name, _ := json.Marshal(t.Name)
		if len(js) > 1 {
			js = append(js, ',')
		}
		js = append(js, name...)
		js = fmt.Appendf(js, `:{"dtype":%q,"shape":[%s],"data_offsets":[%d,%d]}`, t.DType, joinInts(t.Shape), off, end)
		off = end
	}
	js = append(js, '}')
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := make([]byte, 8, 8+len(js))
	for i := range 8 {
		out[i] = byte(uint64(len(js)) >> (8 * i))
	}
	return append(out, js...), nil
}

func joinInts(xs []int) string {
	s := make([]byte, 0, 8*len(xs))
	for i, x := range xs {
		if i > 0 {
			s = append(s, ',')
		}
		s = fmt.Appendf(s, "%d", x)
	}
	return string(s)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
