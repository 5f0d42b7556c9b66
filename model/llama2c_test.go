package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/ckpt"
	"fspo/internal/testenv"
)

func TestExportRoundTrip(t *testing.T) {
	for _, shared := range []bool{true, false} {
		m := tinyModel(t, shared, 3)
		path := filepath.Join(t.TempDir(), "m.bin")
		if err := m.WriteLlama2C(path); err != nil {
			t.Fatal(err)
		}
		back, err := LoadLlama2C(path)
		if err != nil {
			t.Fatal(err)
		}
		if back.Config != m.Config {
			t.Fatalf("config %+v, want %+v", back.Config, m.Config)
		}
		bt := back.W.Tensors(back.Config)
		for i, tt := range m.W.Tensors(m.Config) {
			if !equalF32(tt.Data, bt[i].Data) {
				t.Fatalf("shared=%v: tensor %s differs after the round trip", shared, tt.Name)
			}
		}
	}
}

func TestExportReproducesUpstreamFile(t *testing.T) {
	src := testenv.Model(t).Checkpoint
	m, err := LoadLlama2C(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "again.bin")
	if err := m.WriteLlama2C(out); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(out)
	if len(a) != len(b) {
		t.Fatalf("exported %d bytes, upstream file has %d", len(b), len(a))
	}
	// The weights must be identical; the legacy RoPE tables (unused) may differ in the last bits.
	hdrAndWeights := llama2cHeader + 4*(m.Config.NumParams())
	if !bytes.Equal(a[:hdrAndWeights], b[:hdrAndWeights]) {
		t.Fatal("exported header and weights differ from the upstream file")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func validFile(t testing.TB) []byte {
	m := tinyModel(t, true, 1)
	path := filepath.Join(t.TempDir(), "m.bin")
	if err := m.WriteLlama2C(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadBadFiles(t *testing.T) {
	good := validFile(t)
	withHeader := func(i int, v int32) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		return b
	}
	nan := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(nan[llama2cHeader+40:], math.Float32bits(float32(math.NaN())))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header"},
		{"short header", good[:10], "header"},
		{"truncated weights", good[:len(good)/2], "truncated"},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2, 3, 4), "trailing"},
		{"zero dim", withHeader(0, 0), "dim must be positive"},
		{"heads do not divide dim", withHeader(3, 5), "multiple"},
		{"huge vocab", withHeader(5, 1<<30), "beyond"},
		{"text file", []byte(strings.Repeat("hello world\n", 20)), "header"},
		{"NaN weight", nan, "NaN"},
	} {
		path := filepath.Join(t.TempDir(), "bad.bin")
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadLlama2C(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s and mentioning %q", tc.name, err, path, tc.want)
		}
	}
}

func FuzzReadLlama2C(f *testing.F) {
	good := validFile(f)
	f.Add(good)
	f.Add(good[:100])
	f.Add([]byte{64, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadLlama2C(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			if m.Config.Validate() != nil || m.W.CheckFinite(m.Config) != nil {
				t.Fatal("accepted an invalid model")
			}
		}
	})
}

func TestLoadOwnCheckpoint(t *testing.T) {
	m := tinyModel(t, false, 9)
	cp, err := m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.fspo")
	if err := ckpt.Save(path, cp); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config != m.Config {
		t.Fatalf("config %+v, want %+v", back.Config, m.Config)
	}
	bt := back.W.Tensors(back.Config)
	for i, tt := range m.W.Tensors(m.Config) {
		if !equalF32(tt.Data, bt[i].Data) {
			t.Fatalf("tensor %s differs", tt.Name)
		}
	}
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, raw[:len(raw)-9], 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("truncated checkpoint: error %v, want one naming the file", err)
	}
}
