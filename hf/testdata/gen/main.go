// Command gen writes the tiny random Hugging Face model folders under
// hf/testdata/tiny (run from the repository root: go run ./hf/testdata/gen).
// The weights are drawn from a fixed seed and rounded to values that
// bfloat16, float16 and float32 all hold exactly, so the F32, F16 and BF16
// copies of one model are the same model. After regenerating, refresh the
// independent reader's sums: /usr/bin/python3 hf/testdata/sums.py.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"fspo/atomicfile"
	"fspo/hf"
	"fspo/model"
	"fspo/safetensors"
)

type spec struct {
	name  string
	dtype safetensors.DType
	c     model.Config
}

func specs() []spec {
	base := model.Config{Arch: "llama", Dim: 32, Hidden: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 64,
		SeqLen: 256, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	// Wavelengths 2π·{1, 10, 100, 1000}: one kept, one interpolated, two divided.
	scaled := base
	scaled.RopeScaling = &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}
	untied := base
	untied.KVHeads, untied.SharedClassifier = 4, false
	qwen2 := base
	qwen2.Arch, qwen2.QKVBias, qwen2.NormEps, qwen2.RopeTheta = "qwen2", true, 1e-6, 1e6
	qwen3 := qwen2
	qwen3.Arch, qwen3.QKVBias, qwen3.QKNorm, qwen3.HeadDim = "qwen3", false, true, 16
	return []spec{
		{"llama-gqa-scaled", safetensors.BF16, scaled},
		{"llama-gqa-scaled-f16", safetensors.F16, scaled},
		{"llama-untied", safetensors.BF16, untied},
		{"qwen2", safetensors.BF16, qwen2},
		{"qwen3", safetensors.BF16, qwen3},
	}
}

func main() {
	out := flag.String("out", "hf/testdata/tiny", "folder to write the model folders into")
	flag.Parse()
	for _, s := range specs() {
		dir := filepath.Join(*out, s.name)
		m, err := randomModel(s.c, seed(s.name))
		if err != nil {
			log.Fatal(err)
		}
		if err := hf.Save(dir, m, nil, s.dtype); err != nil {
			log.Fatal(err)
		}
	}
	gqa := filepath.Join(*out, "llama-gqa-scaled")
	gen := `{"bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": null}` + "\n"
	if err := atomicfile.WriteBytes(filepath.Join(gqa, hf.GenerationConfigFile), []byte(gen)); err != nil {
		log.Fatal(err)
	}
	if err := shard(filepath.Join(*out, "llama-untied-sharded"), filepath.Join(*out, "llama-untied")); err != nil {
		log.Fatal(err)
	}
}

// seed derives a model's random stream from its name without the dtype
// suffix, so the dtype copies hold the same weights.
func seed(name string) uint64 {
	name = strings.TrimSuffix(strings.TrimSuffix(name, "-f32"), "-f16")
	var h uint64 = 14695981039346656037
	for _, b := range []byte(name) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return h
}

// randomModel draws weights: matrices N(0, 1/in), the embedding and
// classifier N(0, 0.35²), norm weights 1 + N(0, 0.2²), biases N(0, 0.3²).
func randomModel(c model.Config, s uint64) (*model.Model, error) {
	r := rand.New(rand.NewPCG(s, 1))
	p := model.NewParams(c)
	for _, t := range p.Tensors(c) {
		mean, std := 0.0, 0.35
		switch {
		case strings.HasPrefix(t.Name, "rms") || strings.HasSuffix(t.Name, "norm"):
			mean, std = 1, 0.2
		case t.Name[0] == 'b':
			std = 0.3
		case t.Name != "emb" && t.Name != "wcls":
			std = 1 / math.Sqrt(float64(t.Shape[len(t.Shape)-1]))
		}
		for i := range t.Data {
			t.Data[i] = exact(r, mean, std)
		}
	}
	return model.New(c, p)
}

// exact draws N(mean, std²) until the value rounded to bfloat16 is a normal
// float16 (or zero), which all three dtypes hold exactly.
func exact(r *rand.Rand, mean, std float64) float32 {
	for {
		v := safetensors.BF16ToF32(safetensors.F32ToBF16(float32(mean + std*r.NormFloat64())))
		if a := math.Abs(float64(v)); a >= 1.0/(1<<14) && a < 60000 {
			return v
		}
	}
}

// shard writes the weights of src as two shards and an index in dir, with
// the config of src.
func shard(dir, src string) error {
	f, err := safetensors.Open(filepath.Join(src, hf.WeightsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	var parts [2][]safetensors.Tensor
	var total int64
	index := map[string]string{}
	for i, t := range f.Tensors {
		data := make([]float32, t.Numel())
		if err := f.ReadF32(t.Name, data); err != nil {
			return err
		}
		total += t.End - t.Begin
		k := 2 * i / len(f.Tensors)
		parts[k] = append(parts[k], safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: data})
		index[t.Name] = fmt.Sprintf("model-%05d-of-00002.safetensors", k+1)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k, ts := range parts {
		if err := safetensors.Write(filepath.Join(dir, fmt.Sprintf("model-%05d-of-00002.safetensors", k+1)), f.Metadata, ts); err != nil {
			return err
		}
	}
	return writeIndex(dir, src, index, total)
}

// writeIndex copies src's config.json and writes model.safetensors.index.json.
func writeIndex(dir, src string, index map[string]string, total int64) error {
	cfg, err := os.ReadFile(filepath.Join(src, hf.ConfigFile))
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, hf.ConfigFile), cfg); err != nil {
		return err
	}
	js, err := json.MarshalIndent(map[string]any{"metadata": map[string]int64{"total_size": total}, "weight_map": index}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, hf.IndexFile), append(js, '\n'))
}
