// Command hfload measures loading a Hugging Face folder: the time and the
// peak resident memory (VmHWM) of hf.Load. With -gen it first writes a
// random BF16 folder shaped like Llama-3.2-1B (2048 wide, 16 layers, 32
// heads, 8 key/value heads, 8192 FFN, 128256 vocabulary, tied embeddings;
// 1.24 billion weights, 2.5 GB) — run the two steps as separate processes so
// that the writer's memory does not count:
//
//	go run ./x/hfload -gen /tmp/llama1b-bf16
//	go run ./x/hfload /tmp/llama1b-bf16
//	go run ./x/hfload -save /tmp/llama1b-bf16-out /tmp/llama1b-bf16
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"fspo/atomicfile"
	"fspo/hf"
	"fspo/model"
	"fspo/safetensors"
)

func main() {
	gen := flag.Bool("gen", false, "write the random folder instead of loading it")
	save := flag.String("save", "", "after loading, save the model to this folder (in the input's dtype) and time that too")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: hfload [-gen] FOLDER")
	}
	dir := flag.Arg(0)
	if *gen {
		if err := generate(dir); err != nil {
			log.Fatal(err)
		}
		return
	}
	before := status("VmHWM")
	start := time.Now()
	m, f, err := hf.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	took := time.Since(start)
	n := m.Config.NumParams()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("loaded %s: %d weights (%s), %.1f s (user %.1f s, system %.1f s, %d minor page faults)\n", dir, n, f.DType, took.Seconds(),
		time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds(), ru.Minflt)
	fmt.Printf("VmHWM before %s, after %s; VmRSS after %s; float32 weights %.2f GB\n",
		before, status("VmHWM"), status("VmRSS"), float64(4*n)/1e9)
	if *save != "" {
		start := time.Now()
		if err := hf.Save(*save, m, f, ""); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("saved %s in %.1f s; VmHWM %s\n", *save, time.Since(start).Seconds(), status("VmHWM"))
	}
	runtime.KeepAlive(m)
}

// status reads a field of /proc/self/status.
func status(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func generate(dir string) error {
	c := model.Config{Arch: "llama", Dim: 2048, Hidden: 8192, Layers: 16, Heads: 32, KVHeads: 8, Vocab: 128256,
		SeqLen: 131072, NormEps: 1e-5, RopeTheta: 500000, SharedClassifier: true,
		RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := hf.ConfigJSON(c, safetensors.BF16)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, hf.ConfigFile), cfg); err != nil {
		return err
	}
	shapes := hf.Shapes(c)
	slices.SortFunc(shapes, func(a, b hf.Shape) int { return strings.Compare(a.Name, b.Name) }) // as hf.Save orders them
	var ts []safetensors.Tensor
	for i, s := range shapes {
		seed := uint64(i + 1)
		ts = append(ts, safetensors.Tensor{Name: s.Name, DType: safetensors.BF16, Shape: s.Shape, Fill: func(off int, dst []float32) {
			x := seed*0x9e3779b97f4a7c15 + uint64(off)
			for j := range dst { // xorshift: uniform in (-0.05, 0.05)
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				dst[j] = float32(math.Float64frombits(0x3ff0000000000000|x>>12)-1.5) / 10
			}
		}})
	}
	return safetensors.Write(filepath.Join(dir, hf.WeightsFile), map[string]string{"format": "pt"}, ts)
}
