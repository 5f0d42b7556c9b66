package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainFlagsOverrideConfig: defaults < config file < flags, and the
// merged settings are validated before any data is read.
func TestTrainFlagsOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfg, []byte("stage: sft\nlr: -1\nbatch: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// the file's bad lr is fixed by --lr; --batch 0 breaks the file's good batch
	_, _, err := runCLI(t, "train", "--data", dir, "--out", filepath.Join(dir, "run"), "--config", cfg, "--lr", "0.01", "--batch", "0")
	if err == nil || !strings.Contains(err.Error(), "batch: 0") || strings.Contains(err.Error(), "lr:") {
		t.Fatalf("error %v, want only the batch flag's problem", err)
	}
	if err := os.WriteFile(cfg, []byte("stage: sft\nlearning_rate: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "train", "--data", dir, "--out", filepath.Join(dir, "run"), "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), "learning_rate") {
		t.Fatalf("unknown key: error %v, want one naming the file and the key", err)
	}
}
