// Package interop converts between this project's preference format and
// other layouts: it imports the preference files released with the FSPO
// paper (Singh et al. 2025, arXiv 2502.19312) from JSONL or Parquet, and
// exports few-shot episodes as TRL-style prompt/chosen/rejected JSONL.
//
// # Which field is the user, and which response is preferred
//
// The released loaders (the paper's preference_datasets.py) group rows into
// users and orient each pair as follows; Import does the same:
//
//   - Roleplay rows {x, yw, yl, level, score_persona}: x is the prompt, yw
//     the preferred and yl the dispreferred response (the pair is already
//     oriented). The loader groups a user's rows by `level`, so level is the
//     user ID; score_persona is the persona text the judge scored with,
//     i.e. the user's description.
//   - ELIX and Reviews rows {prompt, response_x, response_y, level_x,
//     level_y, scorer_level, label}: scorer_level is the user (the level
//     whose judge labelled the pair; level_x and level_y are the levels the
//     two responses were written for, kept as provenance). label 0 means
//     response_x is preferred, label 1 means response_y is preferred
//     (yw = response_x if label == 0 else response_y). The user's
//     description is the loader's persona text: for Reviews levels
//     ("positive", "negative+concise", …) "This user prefers positive
//     reviews." and so on, for ELIX levels "The user is {level}."; the
//     rejected response's description is the same text for its level.
//     Reviews users whose level combines two traits ("positive+concise")
//     are the paper's interpolated users.
package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"fspo/dataset"
)

// Layout names a released row layout.
type Layout string

const (
	// Roleplay rows: x, yw, yl, level, score_persona.
	Roleplay Layout = "roleplay"
	// Pairwise rows (ELIX, Reviews): prompt, response_x, response_y,
	// level_x, level_y, scorer_level, label.
	Pairwise Layout = "pairwise"
)

// RowError is a problem with one field of one input row: "file:row: field: problem".
type RowError struct {
	File    string
	Row     int // 1-based line (JSONL) or row number (Parquet)
	Field   string
	Problem string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Row, e.Field, e.Problem)
}

// Options adjusts Import.
type Options struct {
	// Layout forces a layout; empty detects it from the first row's fields.
	Layout Layout
	// Source is the records' Source (default "import:" + the file's base name).
	Source string
	// SkipInvalid counts and lists rows that fail validation (an empty
	// response, chosen equal to rejected) instead of stopping at the first.
	SkipInvalid bool
}

// Stats summarises an import.
type Stats struct {
	Layout  Layout
	Rows    int
	Records int
	// Duplicates are records already in the output (same user, prompt,
	// chosen and rejected), counted and not written again (ImportFile).
	Duplicates int
	// Skipped rows (only with SkipInvalid), the first 20 listed.
	Skipped  int
	Problems []string
	// Users in order of first appearance, with the interpolated ones.
	Users        []string
	Interpolated []string
}

// row is one input row: values are string, json.Number, int64, float64, bool or nil.
type row map[string]any

// Import reads a released file (.jsonl/.json lines or .parquet) and calls
// emit for each record, in file order.
func Import(path string, opt Options, emit func(dataset.Record) error) (Stats, error) {
	st := Stats{Layout: opt.Layout}
	if opt.Source == "" {
		opt.Source = "import:" + filepath.Base(path)
	}
	seenUser := map[string]bool{}
	each := func(n int, r row) error {
		st.Rows++
		if st.Layout == "" {
			switch {
			case has(r, "x", "yw", "yl"):
				st.Layout = Roleplay
			case has(r, "response_x", "response_y", "label"):
				st.Layout = Pairwise
			default:
				return &RowError{File: path, Row: n, Field: "row", Problem: "neither the roleplay layout (x, yw, yl, level, score_persona) nor the pairwise layout (prompt, response_x, response_y, level_x, level_y, scorer_level, label)"}
			}
		}
		rec, err := convert(st.Layout, r)
		if err == nil {
			rec.Source = opt.Source
			rec.ID = dataset.ContentID(rec)
			rec.Meta["row"] = strconv.Itoa(n)
			if cerr := rec.Check(); cerr != nil {
				var fe *dataset.FieldError
				if errors.As(cerr, &fe) {
					err = &RowError{Field: fe.Field, Problem: fe.Problem}
				} else {
					err = &RowError{Field: "row", Problem: cerr.Error()}
				}
			}
		}
		if err != nil {
			re := err.(*RowError)
			re.File, re.Row = path, n
			if !opt.SkipInvalid || re.Field == "label" || strings.HasPrefix(re.Problem, "missing") {
				return re
			}
			st.Skipped++
			if len(st.Problems) < 20 {
				st.Problems = append(st.Problems, re.Error())
			}
			return nil
		}
		if !seenUser[rec.User] {
			seenUser[rec.User] = true
			st.Users = append(st.Users, rec.User)
			if rec.Meta["interpolated"] == "true" {
				st.Interpolated = append(st.Interpolated, rec.User)
			}
		}
		st.Records++
		return emit(rec)
	}
	var err error
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		err = readParquet(path, each)
	} else {
		err = readJSONL(path, each)
	}
	return st, err
}

func has(r row, keys ...string) bool {
	for _, k := range keys {
		if _, ok := r[k]; !ok {
			return false
		}
	}
	return true
}

// reviewsLevels are the persona texts of the released Reviews loader.
var reviewsLevels = map[string]string{
	"positive": "This user prefers positive reviews.",
	"negative": "This user prefers negative reviews.",
	"concise":  "This user prefers concise reviews.",
	"verbose":  "This user prefers verbose reviews.",
}

// interpolated reports whether a level combines two Reviews traits
// ("positive+concise"): the paper's interpolated users.
func interpolated(level string) bool {
	a, b, ok := strings.Cut(level, "+")
	_, okA := reviewsLevels[a]
	_, okB := reviewsLevels[b]
	return ok && okA && okB
}

// levelDescription is the loader's persona text for a pairwise level.
func levelDescription(level string) string {
	if d, ok := reviewsLevels[level]; ok {
		return d
	}
	if interpolated(level) {
		a, b, _ := strings.Cut(level, "+")
		return "This user prefers " + a + " and " + b + " reviews."
	}
	return "The user is " + level + "."
}

func convert(l Layout, r row) (dataset.Record, error) {
	var rec dataset.Record
	var err error
	get := func(field string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = text(r, field)
		return s
	}
	switch l {
	case Roleplay:
		rec.Prompt, rec.Chosen, rec.Rejected = get("x"), get("yw"), get("yl")
		rec.User, rec.Description = get("level"), get("score_persona")
		rec.Meta = map[string]string{"level": rec.User}
	case Pairwise:
		prompt, rx, ry := get("prompt"), get("response_x"), get("response_y")
		lx, ly, user := get("level_x"), get("level_y"), get("scorer_level")
		if err != nil {
			return rec, err
		}
		lab, lerr := label(r)
		if lerr != nil {
			return rec, lerr
		}
		rec.Prompt, rec.User, rec.Description = prompt, user, levelDescription(user)
		rec.Chosen, rec.Rejected = rx, ry
		cl, rl := lx, ly
		if lab == 1 {
			rec.Chosen, rec.Rejected, cl, rl = ry, rx, ly, lx
		}
		rec.RejectedDescription = levelDescription(rl)
		rec.Meta = map[string]string{"chosen_level": cl, "rejected_level": rl, "label": strconv.Itoa(lab)}
		if interpolated(user) {
			rec.Meta["interpolated"] = "true"
		}
	default:
		return rec, &RowError{Field: "layout", Problem: fmt.Sprintf("unknown layout %q", l)}
	}
	return rec, err
}

// text reads a field as text; numbers (a level given as an ID) are written in decimal.
func text(r row, field string) (string, error) {
	v, ok := r[field]
	if !ok || v == nil {
		return "", &RowError{Field: field, Problem: "missing"}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", &RowError{Field: field, Problem: fmt.Sprintf("%T is not text", v)}
}

// label reads the pairwise label: 0 (response_x preferred) or 1 (response_y).
func label(r row) (int, error) {
	v, ok := r["label"]
	if !ok || v == nil {
		return 0, &RowError{Field: "label", Problem: "missing"}
	}
	var f float64
	switch x := v.(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case json.Number:
		g, err := x.Float64()
		if err != nil {
			return 0, &RowError{Field: "label", Problem: fmt.Sprintf("%q is not a number", x)}
		}
		f = g
	case int64:
		f = float64(x)
	case float64:
		f = x
	case string:
		g, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, &RowError{Field: "label", Problem: fmt.Sprintf("%q is not 0 or 1", x)}
		}
		f = g
	default:
		return 0, &RowError{Field: "label", Problem: fmt.Sprintf("%T is not 0 or 1", v)}
	}
	if f != 0 && f != 1 {
		return 0, &RowError{Field: "label", Problem: fmt.Sprintf("%v is not 0 (response_x preferred) or 1 (response_y preferred)", v)}
	}
	return int(f), nil
}

func readJSONL(path string, each func(n int, r row) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.UseNumber()
			var r row
			if derr := dec.Decode(&r); derr != nil {
				return &RowError{File: path, Row: n, Field: "json", Problem: derr.Error()}
			}
			if eerr := each(n, r); eerr != nil {
				return eerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
	}
}

// readParquet streams a Parquet file's rows; top-level primitive columns
// become fields (nested columns are ignored).
func readParquet(path string, each func(n int, r row) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	cols := pf.Schema().Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		if len(c) == 1 {
			names[i] = c[0]
		}
	}
	n := 0
	buf := make([]parquet.Row, 64)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, rerr := rows.ReadRows(buf)
			for _, pr := range buf[:k] {
				n++
				r := row{}
				for _, v := range pr {
					name := names[v.Column()]
					if name == "" {
						continue
					}
					r[name] = parquetValue(v)
				}
				if err := each(n, r); err != nil {
					rows.Close()
					return err
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				rows.Close()
				return fmt.Errorf("import %s: row %d: %w", path, n+1, rerr)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
	}
	return nil
}

func parquetValue(v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	case parquet.Int32, parquet.Int64:
		return v.Int64()
	case parquet.Float, parquet.Double:
		return v.Double()
	case parquet.Boolean:
		return v.Boolean()
	}
	return v.String()
}

// ImportFile imports src into the data directory dir: dir/preferences.jsonl
// (records already there are skipped, so a rerun is harmless) and a
// manifest whose test users are the interpolated users plus testFrac of the
// others (dataset.Split with seed).
func ImportFile(src, dir string, opt Options, testFrac float64, seed int64) (Stats, error) {
	if err := dataset.ValidFrac(testFrac); err != nil {
		return Stats{}, fmt.Errorf("import: test fraction: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("import: %w", err)
	}
	out := filepath.Join(dir, dataset.FileName)
	w, err := dataset.Append(out)
	if err != nil {
		return Stats{}, fmt.Errorf("import: %w", err)
	}
	defer w.Close()
	var batch []dataset.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := w.WriteBatch(batch)
		batch = batch[:0]
		return err
	}
	inBatch := map[string]bool{}
	dups := 0
	st, err := Import(src, opt, func(r dataset.Record) error {
		if w.Has(r.ID) || inBatch[r.ID] {
			dups++
			return nil
		}
		inBatch[r.ID] = true
		batch = append(batch, r)
		if len(batch) == 512 {
			clear(inBatch)
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	st.Duplicates = dups
	if err != nil {
		return st, fmt.Errorf("import %s: %w", src, err)
	}
	if err := w.Close(); err != nil {
		return st, err
	}
	interp := map[string]bool{}
	var rest []string
	for _, u := range st.Interpolated {
		interp[u] = true
	}
	for _, u := range st.Users {
		if !interp[u] {
			rest = append(rest, u)
		}
	}
	train, test := dataset.Split(rest, testFrac, seed)
	test = append(test, st.Interpolated...)
	sort.Strings(test)
	interpSorted := append([]string{}, st.Interpolated...)
	sort.Strings(interpSorted)
	fi, err := dataset.Describe(out)
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	m := dataset.Manifest{
		Version: dataset.ManifestVersion, Domain: "import:" + string(st.Layout), Seed: seed,
		Created: time.Now().UTC().Format(time.RFC3339), TrainUsers: nonNil(train), TestUsers: nonNil(test), Interpolated: interpSorted,
		Files: map[string]dataset.FileInfo{dataset.FileName: fi},
		Notes: map[string]string{"source": src},
	}
	if err := dataset.WriteManifest(dir, m); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	return st, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
