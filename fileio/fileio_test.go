package fileio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(good, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := errors.New("bad input")
	parse := func(b []byte) (string, error) {
		if string(b) != "hello" {
			return "", bad
		}
		return string(b), nil
	}
	decode := func(r io.Reader, size int64) (string, error) {
		b, err := io.ReadAll(r)
		if err != nil || int64(len(b)) != size {
			return "", errors.New("short read")
		}
		return parse(b)
	}
	if v, err := Parse(good, parse); err != nil || v != "hello" {
		t.Errorf("Parse(good) = %q, %v", v, err)
	}
	if v, err := Decode(good, decode); err != nil || v != "hello" {
		t.Errorf("Decode(good) = %q, %v", v, err)
	}
	data, release, err := Map(good)
	if err != nil || !bytes.Equal(data, []byte("hello")) {
		t.Fatalf("Map(good) = %q, %v", data, err)
	}
	if err := release(); err != nil {
		t.Errorf("release: %v", err)
	}
	// A parse error keeps its cause and names the file; so do the others.
	if _, err := Parse(empty, parse); !errors.Is(err, bad) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Parse(empty) = %v, want %v naming %s", err, bad, empty)
	}
	if _, err := Decode(empty, decode); !errors.Is(err, bad) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Decode(empty) = %v, want %v naming %s", err, bad, empty)
	}
	for name, f := range map[string]func(string) error{
		"Parse":  func(p string) error { _, err := Parse(p, parse); return err },
		"Decode": func(p string) error { _, err := Decode(p, decode); return err },
		"Map":    func(p string) error { _, _, err := Map(p); return err },
	} {
		for _, p := range []string{filepath.Join(dir, "missing"), dir} {
			if err := f(p); err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("%s(%s) = %v, want an error naming it", name, p, err)
			}
		}
	}
	// A LineError is named PATH:LINE, as editors and compilers do.
	lineErr := func([]byte) (int, error) { return 0, AtLine(3, "no %s", "colon") }
	if _, err := Parse(good, lineErr); err == nil || err.Error() != good+":3: no colon" {
		t.Errorf("Parse with a line error = %v, want %q", err, good+":3: no colon")
	}
	if _, _, err := Map(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("Map(empty) = %v, want an error naming it", err)
	}
}
