package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrDuplicate is returned (wrapped) by Writer.Write for a record whose key
// is already in the file.
var ErrDuplicate = errors.New("duplicate record")

// Writer appends validated records to a JSONL file, one whole line per
// write call. Durability point: when Write (or WriteBatch) returns nil, its
// records are on disk (the file was fsynced). A crash mid-write leaves at
// most a partial last line, which the next Append cuts off and reports in
// Cut. Only one Writer may have a file open at a time; a Writer is safe for
// concurrent use by several goroutines.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	size   int64 // bytes of complete lines in the file
	keys   map[string]struct{}
	cut    int64
	broken error // set when a failed write could not be undone
}

// Append opens path for appending, creating it if needed. If the file ends
// with a partial line (a crash while writing it: that record was never
// acknowledged) the partial line is cut off, and Cut reports how many bytes
// were removed. The existing records are read and validated, and their keys
// (Record.Key) loaded so Has can tell a resumed producer what is already
// written.
func Append(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open dataset for append: %w", err)
	}
	w := &Writer{f: f, path: path, keys: make(map[string]struct{})}
	if err := w.repair(); err != nil {
		f.Close()
		return nil, fmt.Errorf("repair %s: %w", path, err)
	}
	if err := w.loadKeys(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// repair cuts a partial last line (bytes after the last '\n').
func (w *Writer) repair() error {
	st, err := w.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	end, err := lastNewline(w.f, size)
	if err != nil {
		return err
	}
	if end == size {
		w.size = size
		return nil
	}
	if err := w.f.Truncate(end); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.size, w.cut = end, size-end
	return nil
}

// lastNewline returns the offset just after the last '\n' in the first size
// bytes of f (0 when there is none), reading backwards in blocks.
func lastNewline(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		start := end - n
		if _, err := f.ReadAt(buf[:n], start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

func (w *Writer) loadKeys() error {
	r := NewReader(io.NewSectionReader(w.f, 0, w.size), w.path)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		k := rec.Key()
		if _, dup := w.keys[k]; dup {
			return &FieldError{File: w.path, Line: r.Line(), Field: "id",
				Problem: fmt.Sprintf("duplicate record %q", k)}
		}
		w.keys[k] = struct{}{}
	}
}

// Cut is the number of bytes of a partial last line that Append removed (0
// when the file ended cleanly).
func (w *Writer) Cut() int64 { return w.cut }

// Len is the number of records in the file.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.keys)
}

// Has reports whether a record with this key (Record.Key) is in the file.
func (w *Writer) Has(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.keys[id]
	return ok
}

// Write appends one record as one line and fsyncs. A record without an ID
// gets ID = ContentID(r). A record failing Record.Check, or whose key is
// already in the file (ErrDuplicate), is not written.
func (w *Writer) Write(r Record) error {
	return w.WriteBatch([]Record{r})
}

// WriteBatch appends records with one write call and one fsync; the
// durability point is its return. Every record is checked first, and
// nothing is written if one fails. After a crash during the call, any
// prefix of its complete lines may be in the file.
func (w *Writer) WriteBatch(records []Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("write %s: writer closed", w.path)
	}
	if w.broken != nil {
		return fmt.Errorf("write %s: writer unusable after an earlier failure: %w", w.path, w.broken)
	}
	var buf, line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	batch := make(map[string]struct{}, len(records))
	for i, r := range records {
		if err := r.Check(); err != nil {
			return fmt.Errorf("write %s: record %d of batch: %w", w.path, i, err)
		}
		if r.ID == "" {
			r.ID = ContentID(r)
		}
		_, inFile := w.keys[r.ID]
		_, inBatch := batch[r.ID]
		if inFile || inBatch {
			return fmt.Errorf("write %s: record %d of batch, id %q: %w", w.path, i, r.ID, ErrDuplicate)
		}
		batch[r.ID] = struct{}{}
		line.Reset()
		if err := enc.Encode(r); err != nil { // Encode ends the line with '\n'
			return fmt.Errorf("write %s: encode record %d of batch: %w", w.path, i, err)
		}
		if line.Len()-1 > MaxLine {
			return fmt.Errorf("write %s: record %d of batch: line of %d bytes is longer than %d",
				w.path, i, line.Len()-1, MaxLine)
		}
		buf.Write(line.Bytes())
	}
	if _, err := w.f.Write(buf.Bytes()); err != nil {
		// Undo a partial write so later lines do not follow garbage.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.broken = terr
		}
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		w.broken = err // the state on disk is unknown
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	w.size += int64(buf.Len())
	for k := range batch {
		w.keys[k] = struct{}{}
	}
	return nil
}

// Close closes the file. Every acknowledged record is already synced.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}
