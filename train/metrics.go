package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"fspo/atomicfile"
	"fspo/fileio"
)

// metricsLog appends Metrics lines to metrics.jsonl. Opened for a resumed run,
// it first drops the lines of steps after the checkpoint (they will be
// recomputed identically) and any partial last line.
type metricsLog struct {
	f *os.File
	w *bufio.Writer
}

func openMetrics(path string, after int64) (*metricsLog, error) {
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("train: metrics: %w", err)
	}
	var keep []byte
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break // a partial line from a crash
		}
		line := raw[:i+1]
		raw = raw[i+1:]
		var m Metrics
		if json.Unmarshal(line, &m) != nil || m.Step > after {
			break
		}
		keep = append(keep, line...)
	}
	if err := atomicfile.WriteBytes(path, keep); err != nil {
		return nil, fmt.Errorf("train: metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: metrics: %w", err)
	}
	return &metricsLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (l *metricsLog) Write(m Metrics) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	l.w.Write(b)
	return l.w.WriteByte('\n')
}

func (l *metricsLog) Sync() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	return l.f.Sync()
}

func (l *metricsLog) Close() error {
	l.w.Flush()
	return l.f.Close()
}

// ReadMetrics reads a metrics.jsonl file.
func ReadMetrics(path string) ([]Metrics, error) {
	var out []Metrics
	err := fileio.Lines(path, func(_ int, text []byte) error {
		var m Metrics
		if err := json.Unmarshal(text, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
