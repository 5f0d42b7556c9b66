package modelpath

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"fspo/models/stories260k"
)

// builtin is the model carried inside the binary: DefaultModel, whose files
// are checked against Known before they are installed.
var builtin fs.FS = stories260k.FS

// installBuiltin writes the built-in DefaultModel into destDir/DefaultModel
// and returns its paths. The files go into a temporary folder that is renamed
// into place, so a concurrent resolver sees either no folder or a complete
// one; when another process installed it first, its folder is used.
func installBuiltin(destDir string) (Paths, error) {
	dir := filepath.Join(destDir, DefaultModel)
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return Paths{}, fmt.Errorf("install built-in %s: %w", DefaultModel, err)
	}
	tmp, err := os.MkdirTemp(destDir, "."+DefaultModel+".*.part")
	if err != nil {
		return Paths{}, fmt.Errorf("install built-in %s: %w", DefaultModel, err)
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	for _, f := range Known[DefaultModel] {
		if err := writeBuiltinFile(filepath.Join(tmp, f.Name), f); err != nil {
			return Paths{}, fmt.Errorf("install built-in %s: %w", DefaultModel, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Paths{}, fmt.Errorf("install built-in %s: %w", DefaultModel, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
			return Paths{}, fmt.Errorf("install built-in %s into %s: %w", DefaultModel, dir, err)
		}
	}
	return fromDir(dir)
}

// writeBuiltinFile writes the built-in copy of f to path after checking its
// size and sha256.
func writeBuiltinFile(path string, f RemoteFile) error {
	data, err := fs.ReadFile(builtin, f.Name)
	if err != nil {
		return fmt.Errorf("built-in %s: %w", f.Name, err)
	}
	if err := checkBytes(data, f); err != nil {
		return fmt.Errorf("built-in %s: %w", f.Name, err)
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// checkBytes compares data with f's size and sha256.
func checkBytes(data []byte, f RemoteFile) error {
	if int64(len(data)) != f.Size {
		return fmt.Errorf("%d bytes, want %d", len(data), f.Size)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return fmt.Errorf("sha256 %s, want %s", got, f.SHA256)
	}
	return nil
}
