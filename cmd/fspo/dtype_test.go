package main

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/tensor"
)

// TestReducedWeightsThroughTheCLI: a GGUF written with --quantize q8_0 (or
// F16) runs in its stored type by default and in another with --dtype;
// generation continues the prompt's text, also with a KV cache of halves
// (--kv-cache f16); fspo bench reports the type it ran.
func TestReducedWeightsThroughTheCLI(t *testing.T) {
	p := sharedModel(t)
	dir := t.TempDir()
	q8, f16 := filepath.Join(dir, "q8.gguf"), filepath.Join(dir, "f16.gguf")
	if _, _, err := runCLI(t, "convert", "--model", p.Checkpoint, "--out", q8, "--quantize", "q8_0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "convert", "--model", p.Checkpoint, "--out", f16, "--dtype", "f16"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--model", q8}, {"--model", q8, "--dtype", "f32"}, {"--model", f16}, {"--model", f16, "--dtype", "bf16"}, {"--model", p.Checkpoint, "--kv-cache", "f16"}} {
		out, stderr, err := runCLI(t, append([]string{"generate", "--prompt", "Once upon", "--temperature", "0", "--steps", "12"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		// stories260K's greedy continuation (F32: see the engine tests' references)
		if !strings.HasPrefix(out, "Once upon a time, there was") {
			t.Errorf("%v: generated %q", args, out)
		}
		if fb := strings.Contains(stderr, "kept in f16"); fb != (args[1] == q8 && len(args) == 2) {
			t.Errorf("%v: stderr %q (q8_0 keeps the 172-wide w2 in f16, and says so)", args, stderr)
		}
	}
	// scoring: the F32 model held in Q8_0 (--dtype) computes with the values
	// of the Q8_0 file (the same quantizer wrote it), close to F32's
	score := func(args ...string) float64 {
		out, _, err := runCLI(t, append([]string{"score", "--json", "--text", "Once upon a time, there was a little girl named Lily."}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var r scoreResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r.Sum
	}
	full, asQ8, file := score("--model", p.Checkpoint), score("--model", p.Checkpoint, "--dtype", "q8_0"), score("--model", q8, "--dtype", "auto")
	if asQ8 != file || asQ8 == full || math.Abs(asQ8-full) > 0.5 {
		t.Errorf("score sums: f32 %.5f, f32 model as q8_0 %.5f, q8_0 file %.5f", full, asQ8, file)
	}
	for file, want := range map[string]string{q8: "q8_0", f16: "f16"} {
		out, _, err := runCLI(t, "bench", "--model", file, "--json", "--repeats", "1", "--threads", "1", "--positions", "16", "--prefill", "16", "--train=false")
		if err != nil {
			t.Fatal(err)
		}
		var r benchResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench --json: %v: %s", err, out)
		}
		if r.DType != want || r.Decode["1"] <= 0 || r.Prefill["1"] <= 0 || r.Train != nil {
			t.Errorf("bench of %s: %+v", want, r)
		}
	}
}

func TestDTypeFlagErrors(t *testing.T) {
	p := sharedModel(t)
	out := filepath.Join(t.TempDir(), "m")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--model", p.Checkpoint, "--dtype", "q4_k"}, `dtype "q4_k": want one of f32, f16, bf16, q8_0`},
		{[]string{"generate", "--model", p.Checkpoint, "--kv-cache", "q8_0"}, `"q8_0" for flag -kv-cache: want f32 or f16`},
		{[]string{"serve", "--db", "sqlite:" + out + ".db", "--kv-cache", "f8"}, `"f8" for flag -kv-cache`},
		{[]string{"convert", "--model", p.Checkpoint, "--out", out + ".gguf", "--quantize", "q4_0"}, `--quantize "q4_0": only q8_0`},
		{[]string{"convert", "--model", p.Checkpoint, "--out", out + ".bin", "--quantize", "q8_0"}, "--quantize q8_0 writes GGUF"},
	} {
		_, _, err := runCLI(t, c.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}

// TestHFFolderLoadsReduced: a Hugging Face folder runs in its stored type
// (BF16 here) by default, loaded without an F32 copy of its matrices, and
// scores exactly as the F32 folder held in BF16 does; it loads straight into
// Q8_0 too (hf's TestLoadAsEqualsConversion checks those values).
func TestHFFolderLoadsReduced(t *testing.T) {
	f32 := chatFolder(t, "qwen3")
	bf16 := filepath.Join(t.TempDir(), "qwen3-bf16")
	if _, _, err := runCLI(t, "convert", "--model", f32, "--out", bf16, "--dtype", "bf16"); err != nil {
		t.Fatal(err)
	}
	env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}
	lm, err := loadLMAs(env, bf16, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if lm.Model.DType() != tensor.BF16 || lm.Model.W.Emb != nil || lm.Model.W.Wq != nil {
		t.Errorf("the BF16 folder loaded as %s (F32 embedding held: %v)", lm.Model.DType(), lm.Model.W.Emb != nil)
	}
	score := func(args ...string) string {
		out, _, err := runCLI(t, append([]string{"score", "--json", "--text", "Hello there, how are you?"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := score("--model", bf16, "--dtype", "auto"), score("--model", f32, "--dtype", "bf16"); a != b {
		t.Errorf("the BF16 folder scores %s, the F32 folder held in BF16 %s", a, b)
	}
	q8, err := loadLMAs(env, bf16, "q8_0")
	if err != nil || q8.Model.DType() != tensor.Q8_0 || q8.Model.W.Emb != nil {
		t.Errorf("the BF16 folder as q8_0: %v, %v", q8.Model.DType(), err)
	}
}
