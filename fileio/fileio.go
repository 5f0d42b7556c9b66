// Package fileio reads the project's input files the same way everywhere:
// whole and parsed, streamed with their size, or mapped into memory, with
// errors that name the file.
package fileio

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Parse reads the file at path and parses its bytes. A read error is the
// operating system's (it names the file); a parse error is prefixed with
// the path.
func Parse[T any](path string, parse func(data []byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Decode opens the regular file at path and decodes it from a buffered
// reader, given the file's size in bytes. Errors are as Parse's.
func Decode[T any](path string, decode func(r io.Reader, size int64) (T, error)) (T, error) {
	var zero T
	f, size, err := open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	v, err := decode(bufio.NewReaderSize(f, 1<<20), size)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Map maps the regular file at path read-only into memory (reads it whole
// where the system maps no files) and returns its bytes and how to release
// them; after release the bytes must not be used. An empty file is an
// error.
func Map(path string) (data []byte, release func() error, err error) {
	f, size, err := open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if size == 0 || size != int64(int(size)) {
		return nil, nil, fmt.Errorf("%s: a file of %d bytes cannot be mapped", path, size)
	}
	data, err = mapFile(f, int(size))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: map: %w", path, err)
	}
	return data, func() error { return unmapFile(data) }, nil
}

// open opens path, which must be a regular file, and returns its size.
func open(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
