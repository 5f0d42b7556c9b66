package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fspo/atomicfile"
	"fspo/fileio"
)

// ManifestName is the manifest's file name inside a data directory.
const ManifestName = "manifest.json"

// ManifestVersion is the manifest format this package writes and reads.
const ManifestVersion = 1

// Manifest describes a data directory: the domain and seed that made it,
// the train / held-out user split, a hash of every data file, and the
// producer's configuration.
type Manifest struct {
	Version    int      `json:"version"`
	Domain     string   `json:"domain"`
	Seed       int64    `json:"seed"`
	Created    string   `json:"created"` // RFC 3339
	TrainUsers []string `json:"train_users"`
	TestUsers  []string `json:"test_users"`
	// Interpolated are held-out users whose attribute combination was never
	// seen in training (a subset of TestUsers).
	Interpolated []string `json:"interpolated,omitempty"`
	// Files maps a path relative to the directory to its hash and size.
	Files  map[string]FileInfo `json:"files"`
	Config json.RawMessage     `json:"config,omitempty"`
	Notes  map[string]string   `json:"notes,omitempty"`
}

// FileInfo identifies one data file's content.
type FileInfo struct {
	SHA256  string `json:"sha256"` // hex of the file's bytes
	Records int    `json:"records"`
}

var (
	manifestKeys = map[string]bool{"version": true, "domain": true, "seed": true, "created": true,
		"train_users": true, "test_users": true, "interpolated": true, "files": true, "config": true, "notes": true}
	fileInfoKeys = map[string]bool{"sha256": true, "records": true}
)

// Check reports the first inconsistency of m: version, domain, created
// time, users listed twice, overlapping splits, interpolated users not
// held out, and file entries.
func (m *Manifest) Check() error {
	if m.Version != ManifestVersion {
		return &FieldError{Field: "version", Problem: fmt.Sprintf("%d, want %d", m.Version, ManifestVersion)}
	}
	if strings.TrimSpace(m.Domain) == "" {
		return &FieldError{Field: "domain", Problem: "missing"}
	}
	if _, err := time.Parse(time.RFC3339, m.Created); err != nil {
		return &FieldError{Field: "created", Problem: fmt.Sprintf("%q is not an RFC 3339 time", m.Created)}
	}
	train := make(map[string]bool, len(m.TrainUsers))
	test := make(map[string]bool, len(m.TestUsers))
	for _, l := range []struct {
		name  string
		users []string
		set   map[string]bool
	}{{"train_users", m.TrainUsers, train}, {"test_users", m.TestUsers, test}, {"interpolated", m.Interpolated, map[string]bool{}}} {
		for _, u := range l.users {
			if strings.TrimSpace(u) == "" {
				return &FieldError{Field: l.name, Problem: "blank user"}
			}
			if l.set[u] {
				return &FieldError{Field: l.name, Problem: fmt.Sprintf("user %q listed twice", u)}
			}
			l.set[u] = true
		}
	}
	for _, u := range m.TestUsers {
		if train[u] {
			return &FieldError{Field: "test_users", Problem: fmt.Sprintf("user %q is also in train_users", u)}
		}
	}
	for _, u := range m.Interpolated {
		if !test[u] {
			return &FieldError{Field: "interpolated", Problem: fmt.Sprintf("user %q is not in test_users", u)}
		}
	}
	for name, fi := range m.Files {
		if name == "" || filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return &FieldError{Field: "files", Problem: fmt.Sprintf("%q is not a path inside the directory", name)}
		}
		if b, err := hex.DecodeString(fi.SHA256); err != nil || len(b) != sha256.Size || fi.SHA256 != strings.ToLower(fi.SHA256) {
			return &FieldError{Field: "files", Problem: fmt.Sprintf("%s: sha256 %q is not 64 lowercase hex digits", name, fi.SHA256)}
		}
		if fi.Records < 0 {
			return &FieldError{Field: "files", Problem: fmt.Sprintf("%s: records %d is negative", name, fi.Records)}
		}
	}
	return nil
}

// WriteManifest checks m and writes it to dir/manifest.json atomically: a
// temporary file in dir is written and synced, then renamed over the old
// manifest, and the directory synced.
func WriteManifest(dir string, m Manifest) error {
	path := filepath.Join(dir, ManifestName)
	if err := m.Check(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the config's bytes as given
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, buf.Bytes())
}

// ReadManifest reads dir/manifest.json strictly: keys must be spelled
// exactly (unknown and duplicate keys are errors), values of the right
// type, and the result must pass Manifest.Check. Errors name the file and
// the field.
func ReadManifest(dir string) (Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	m, err := fileio.Parse(path, func(data []byte) (Manifest, error) {
		m, ferr := parseManifest(data)
		if ferr != nil { // not a nil *FieldError in an error
			return m, ferr
		}
		return m, nil
	})
	var ferr *FieldError
	switch {
	case errors.As(err, &ferr): // "PATH: field: problem"
		return Manifest{}, err
	case err != nil:
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	return m, nil
}

func parseManifest(data []byte) (Manifest, *FieldError) {
	var m Manifest
	ferr := walkObject(data, func(key string, raw json.RawMessage) *FieldError {
		if !manifestKeys[key] {
			return &FieldError{Field: fieldName(key), Problem: "unknown field"}
		}
		if key == "files" && jsonKind(raw) == "object" {
			var files map[string]json.RawMessage
			if err := json.Unmarshal(raw, &files); err != nil {
				return &FieldError{Field: key, Problem: err.Error()}
			}
			for name, fraw := range files {
				if k := jsonKind(fraw); k != "object" {
					return &FieldError{Field: "files", Problem: fmt.Sprintf("%s: must be an object, got %s", name, k)}
				}
				if err := walkObject(fraw, func(k string, _ json.RawMessage) *FieldError {
					if !fileInfoKeys[k] {
						return &FieldError{Field: "files", Problem: fmt.Sprintf("%s: unknown field %q", name, k)}
					}
					return nil
				}); err != nil {
					if err.Field != "files" {
						err = &FieldError{Field: "files", Problem: name + ": " + err.Field + ": " + err.Problem}
					}
					return err
				}
			}
		}
		return nil
	})
	if ferr != nil {
		return Manifest{}, ferr
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Manifest{}, &FieldError{Field: te.Field, Problem: fmt.Sprintf("must be %s, got JSON %s", te.Type, te.Value)}
		}
		return Manifest{}, &FieldError{Field: "json", Problem: strings.TrimPrefix(err.Error(), "json: ")}
	}
	if err := m.Check(); err != nil {
		return Manifest{}, err.(*FieldError)
	}
	if len(m.Config) > 0 { // stored indented; return it as compact as it was given
		var b bytes.Buffer
		if err := json.Compact(&b, m.Config); err != nil {
			return Manifest{}, &FieldError{Field: "config", Problem: err.Error()}
		}
		m.Config = b.Bytes()
	}
	return m, nil
}

// Describe hashes a JSONL file and counts its records, validating each.
func Describe(path string) (FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileInfo{}, fmt.Errorf("describe: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	r := NewReader(io.TeeReader(f, h), path)
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return FileInfo{}, fmt.Errorf("describe: %w", err)
		}
		n++
	}
	return FileInfo{SHA256: hex.EncodeToString(h.Sum(nil)), Records: n}, nil
}

// Verify checks that every file the manifest lists in dir has the recorded
// hash and record count.
func (m *Manifest) Verify(dir string) error {
	for name, want := range m.Files {
		got, err := Describe(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("verify %s: %w", filepath.Join(dir, ManifestName), err)
		}
		if got != want {
			return fmt.Errorf("verify %s: %s has sha256 %s and %d records, the manifest says %s and %d",
				filepath.Join(dir, ManifestName), name, got.SHA256, got.Records, want.SHA256, want.Records)
		}
	}
	return nil
}
