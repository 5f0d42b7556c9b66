// Package fileio reads the project's input files the same way everywhere:
// whole and parsed, streamed with their size, or mapped into memory, with
// errors that name the file.
package fileio

import (
	"bufio"
	"errors"
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
		return zero, named(path, err)
	}
	return v, nil
}

// LineError is a parse error at a line (from 1) of a text file; Parse names
// it as "PATH:LINE: problem".
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// AtLine returns a LineError for line of the problem format describes.
func AtLine(line int, format string, a ...any) error {
	return &LineError{Line: line, Err: fmt.Errorf(format, a...)}
}

// named prefixes err with path, as "PATH:LINE: …" for a LineError.
func named(path string, err error) error {
	if le := (*LineError)(nil); errors.As(err, &le) {
		return fmt.Errorf("%s:%w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
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
		return zero, named(path, err)
	}
	return v, nil
}

// Lines calls each for every line of the text file at path (numbered from
// 1, without its newline; lines up to 64 MiB). An error from each stops the
// reading and is returned as "PATH:LINE: problem"; a read error names the
// file.
func Lines(path string, each func(line int, text []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if err := each(line, sc.Bytes()); err != nil {
			return named(path, &LineError{Line: line, Err: err})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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
