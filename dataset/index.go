package dataset

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// UserIndex maps each user of a JSONL file to the byte ranges of that
// user's lines, so one user's records are read without loading the file.
// It holds about 16 bytes per record.
type UserIndex struct {
	path  string
	size  int64 // file size when indexed; appends later keep offsets valid
	users map[string][]span
}

// span locates one line: its byte offset, length (without '\n') and number.
type span struct {
	off  int64
	n    int32
	line int32
}

// Index streams and validates the file once, recording where each user's
// lines are.
func Index(path string) (*UserIndex, error) {
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ix := &UserIndex{path: path, users: make(map[string][]span)}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		ix.users[rec.User] = append(ix.users[rec.User], span{off: r.start, n: int32(r.lineN), line: int32(r.Line())})
	}
	ix.size = r.next
	return ix, nil
}

// Path is the indexed file.
func (ix *UserIndex) Path() string { return ix.path }

// Users lists the users, sorted.
func (ix *UserIndex) Users() []string {
	return slices.Sorted(maps.Keys(ix.users))
}

// Len is the number of records of user (0 for an unknown user).
func (ix *UserIndex) Len(user string) int { return len(ix.users[user]) }

// Records reads and validates the records of one user, in file order. The
// file may have grown since indexing, but not shrunk.
func (ix *UserIndex) Records(user string) ([]Record, error) {
	spans, ok := ix.users[user]
	if !ok {
		return nil, fmt.Errorf("read %s: user %q is not in the file", ix.path, user)
	}
	f, err := os.Open(ix.path)
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", user, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", user, err)
	}
	if st.Size() < ix.size {
		return nil, fmt.Errorf("read %s: file shrank from %d to %d bytes since it was indexed", ix.path, ix.size, st.Size())
	}
	out := make([]Record, 0, len(spans))
	var buf []byte
	for _, s := range spans {
		if cap(buf) < int(s.n) {
			buf = make([]byte, s.n)
		}
		buf = buf[:s.n]
		if _, err := f.ReadAt(buf, s.off); err != nil {
			return nil, fmt.Errorf("read %s line %d: %w", ix.path, s.line, err)
		}
		rec, ferr := parseLine(buf)
		if ferr != nil {
			ferr.File, ferr.Line = ix.path, int(s.line)
			return nil, fmt.Errorf("file changed since it was indexed: %w", ferr)
		}
		if rec.User != user {
			return nil, fmt.Errorf("read %s line %d: file changed since it was indexed (user %q, want %q)",
				ix.path, s.line, rec.User, user)
		}
		out = append(out, rec)
	}
	return out, nil
}
