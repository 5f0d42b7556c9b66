package dataset

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStreamingMemoryFlat streams a generated file of 200,000 records (about
// 40 MB; 20,000 with -short) and checks the live heap stays far below the
// file size: the reader holds one line, not the file.
func TestStreamingMemoryFlat(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	path := filepath.Join(t.TempDir(), "big.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	filler := strings.Repeat("once upon a time ", 8)
	for i := range n {
		r := Record{User: fmt.Sprintf("user%04d", i%1000), Prompt: fmt.Sprintf("question %d: %s", i, filler),
			Chosen: "a story " + filler, Rejected: fmt.Sprintf("another story %d", i)}
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(path)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	count := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count++
		if count%(n/20) == 0 {
			runtime.GC() // measure what is live, not garbage awaiting collection
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if count != n {
		t.Fatalf("read %d records, want %d", count, n)
	}
	growth := int64(peak) - int64(base)
	t.Logf("file %d bytes, %d records, live heap growth while streaming %d bytes", st.Size(), n, growth)
	if limit := int64(1 << 20); growth > limit || growth > st.Size()/20 {
		t.Errorf("live heap grew by %d bytes while streaming a %d-byte file; want under %d", growth, st.Size(), limit)
	}
}

// BenchmarkReader measures decoding speed on a typical record.
func BenchmarkReader(b *testing.B) {
	line := `{"user":"user0001","prompt":"Tell me a story about a cat.","chosen":"Once upon a time there was a cat named Tom. He liked to play.","rejected":"The dog ran.","description":"likes cats","source":"stories"}` + "\n"
	data := strings.Repeat(line, 1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(strings.NewReader(data), "bench")
		for {
			if _, err := r.Next(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				b.Fatal(err)
			}
		}
	}
}
