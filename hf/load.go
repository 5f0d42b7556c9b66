package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fspo/model"
	"fspo/safetensors"
	"fspo/tensor"
)

// File names inside a Hugging Face model folder.
const (
	ConfigFile           = "config.json"
	WeightsFile          = "model.safetensors"
	IndexFile            = "model.safetensors.index.json"
	TokenizerFile        = "tokenizer.json"
	TokenizerConfigFile  = "tokenizer_config.json"
	GenerationConfigFile = "generation_config.json"
)

// Folder describes a loaded Hugging Face model folder.
type Folder struct {
	Dir       string
	ModelType string            // config.json model_type
	DType     safetensors.DType // of the weights (the embedding's)
	// Config is config.json as read, field by field, so that a writer can
	// give back the fields it does not interpret.
	Config map[string]json.RawMessage
	// Paths of the tokenizer files; "" when the folder has none.
	Tokenizer, TokenizerConfig, GenerationConfigPath string
	Generation                                       *GenerationConfig // nil without generation_config.json
}

// GenerationConfig holds the special token ids of generation_config.json;
// each may be one id or a list in the file.
type GenerationConfig struct {
	BOS, EOS, PAD []int
}

// IsFolder reports whether dir is a folder holding config.json, i.e. one
// that Load should read.
func IsFolder(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, ConfigFile))
	return err == nil && st.Mode().IsRegular()
}

// Load reads the model in dir. The weights are memory-mapped and converted
// tensor by tensor into the model's single float32 block, so the float32
// copy is the only one held.
func Load(dir string) (*model.Model, *Folder, error) {
	f, c, w, err := openFolder(dir)
	if err != nil {
		return nil, nil, err
	}
	defer w.close()
	p := model.NewParams(c)
	for _, t := range p.Tensors(c) {
		tensor.HugePages(t.Data)
	}
	if err := w.read(c, p); err != nil {
		return nil, nil, err
	}
	m, err := model.New(c, p)
	if err != nil {
		return nil, nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	return m, f, nil
}

// openFolder reads the folder's config and extra files and maps its
// weights, checked against the config (the caller closes them).
func openFolder(dir string) (*Folder, model.Config, *weights, error) {
	f, c, err := readConfig(dir)
	if err != nil {
		return nil, c, nil, err
	}
	if err := f.findExtras(); err != nil {
		return nil, c, nil, err
	}
	w, err := openWeights(dir)
	if err != nil {
		return nil, c, nil, err
	}
	if f.DType, err = w.check(c); err != nil {
		w.close()
		return nil, c, nil, err
	}
	return f, c, w, nil
}

// ReadFolder reads a folder's config.json and notes its tokenizer and
// generation files, without its weights.
func ReadFolder(dir string) (*Folder, model.Config, error) {
	f, c, err := readConfig(dir)
	if err != nil {
		return nil, c, err
	}
	return f, c, f.findExtras()
}

func readConfig(dir string) (*Folder, model.Config, error) {
	path := filepath.Join(dir, ConfigFile)
	js, err := os.ReadFile(path)
	if err != nil {
		return nil, model.Config{}, fmt.Errorf("hf: %w", err)
	}
	f := &Folder{Dir: dir}
	if err := json.Unmarshal(js, &f.Config); err != nil {
		return nil, model.Config{}, fmt.Errorf("hf %s: %w", path, err)
	}
	c, _, err := ParseConfig(js)
	if err != nil {
		return nil, model.Config{}, fmt.Errorf("hf %s: %w", path, err)
	}
	json.Unmarshal(f.Config["model_type"], &f.ModelType) // checked by ParseConfig
	return f, c, nil
}

// findExtras notes the tokenizer files and parses generation_config.json.
func (f *Folder) findExtras() error {
	for _, x := range []struct {
		name string
		dst  *string
	}{{TokenizerFile, &f.Tokenizer}, {TokenizerConfigFile, &f.TokenizerConfig}, {GenerationConfigFile, &f.GenerationConfigPath}} {
		p := filepath.Join(f.Dir, x.name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			*x.dst = p
		}
	}
	if f.GenerationConfigPath == "" {
		return nil
	}
	js, err := os.ReadFile(f.GenerationConfigPath)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	g, err := ParseGenerationConfig(js)
	if err != nil {
		return fmt.Errorf("hf %s: %w", f.GenerationConfigPath, err)
	}
	f.Generation = g
	return nil
}

// ParseGenerationConfig reads the token ids of a generation_config.json.
func ParseGenerationConfig(js []byte) (*GenerationConfig, error) {
	var raw struct {
		BOS json.RawMessage `json:"bos_token_id"`
		EOS json.RawMessage `json:"eos_token_id"`
		PAD json.RawMessage `json:"pad_token_id"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, err
	}
	g := &GenerationConfig{}
	for _, x := range []struct {
		field string
		raw   json.RawMessage
		dst   *[]int
	}{{"bos_token_id", raw.BOS, &g.BOS}, {"eos_token_id", raw.EOS, &g.EOS}, {"pad_token_id", raw.PAD, &g.PAD}} {
		ids, err := tokenIDs(x.raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.field, err)
		}
		*x.dst = ids
	}
	return g, nil
}

// tokenIDs reads null, one id or a list of ids.
func tokenIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var ids []int
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, errors.New("want a token id or a list of token ids")
	}
	return ids, nil
}

// weights is the set of mapped safetensors files of a folder.
type weights struct {
	files  []*safetensors.File
	byName map[string]*safetensors.File
}

func (w *weights) close() {
	for _, f := range w.files {
		f.Close()
	}
}

// openWeights maps model.safetensors, or every shard model.safetensors.index.json names.
func openWeights(dir string) (*weights, error) {
	w := &weights{byName: map[string]*safetensors.File{}}
	single := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(single); err == nil {
		f, err := safetensors.Open(single)
		if err != nil {
			return nil, fmt.Errorf("hf: %w", err)
		}
		w.files = append(w.files, f)
		for _, t := range f.Tensors {
			w.byName[t.Name] = f
		}
		return w, nil
	}
	index := filepath.Join(dir, IndexFile)
	js, err := os.ReadFile(index)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("hf %s: no weights (want %s or %s)", dir, WeightsFile, IndexFile)
	}
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	if err := w.openShards(dir, index, js); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *weights) openShards(dir, index string, js []byte) error {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(js, &idx); err != nil {
		return fmt.Errorf("hf %s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return fmt.Errorf("hf %s: weight_map: missing or empty", index)
	}
	shards := map[string]*safetensors.File{}
	for _, name := range slices.Sorted(maps.Keys(idx.WeightMap)) {
		shard := idx.WeightMap[name]
		if shard == "" || shard != filepath.Base(shard) {
			return fmt.Errorf("hf %s: weight_map[%q]: %q is not a file name in the folder", index, name, shard)
		}
		f, ok := shards[shard]
		if !ok {
			var err error
			if f, err = safetensors.Open(filepath.Join(dir, shard)); err != nil {
				return fmt.Errorf("hf %s: weight_map[%q]: shard: %w", index, name, err)
			}
			shards[shard] = f
			w.files = append(w.files, f)
		}
		if _, ok := f.Info(name); !ok {
			return fmt.Errorf("hf %s: weight_map[%q]: tensor not in shard %s", index, name, f.Path)
		}
		w.byName[name] = f
	}
	return nil
}

// check finds every tensor of a model of config c, with its shape, and no
// tensor the model does not use, before anything is allocated (so a config
// promising more than the files hold fails here). It returns the
// embedding's dtype.
func (w *weights) check(c model.Config) (safetensors.DType, error) {
	shapes := Shapes(c)
	used := map[string]bool{}
	for _, s := range shapes {
		f, ok := w.byName[s.Name]
		if !ok {
			return "", fmt.Errorf("hf %s: tensor %s: missing", w.where(), s.Name)
		}
		t, _ := f.Info(s.Name)
		if err := t.Convertible(); err != nil {
			return "", fmt.Errorf("hf %s: %w", f.Path, err)
		}
		if !slices.Equal(t.Shape, s.Shape) {
			if s.Name == "model.embed_tokens.weight" && len(t.Shape) == 2 && t.Shape[0] != c.Vocab {
				return "", fmt.Errorf("hf %s: tensor %s: %d rows, but config.json vocab_size is %d", f.Path, s.Name, t.Shape[0], c.Vocab)
			}
			return "", fmt.Errorf("hf %s: tensor %s: shape %v, config.json implies %v", f.Path, s.Name, t.Shape, s.Shape)
		}
		used[s.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(w.byName)) {
		if used[name] || strings.HasSuffix(name, ".rotary_emb.inv_freq") || name == "lm_head.weight" && c.SharedClassifier {
			continue
		}
		return "", fmt.Errorf("hf %s: tensor %s: not part of a %s model with this config.json", w.byName[name].Path, name, c.Arch)
	}
	emb, _ := w.byName[shapes[0].Name].Info(shapes[0].Name)
	return emb.DType, nil
}

// read converts every tensor (checked by check) into p.
func (w *weights) read(c model.Config, p *model.Params) error {
	for _, e := range entries(c, p) {
		if err := w.readEntry(e); err != nil {
			return err
		}
	}
	return nil
}

// readEntry converts one tensor into its place, e.dst.
func (w *weights) readEntry(e entry) error {
	f := w.byName[e.name]
	if err := f.ReadF32(e.name, e.dst); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	for i, v := range e.dst {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // exponent all ones: Inf or NaN
			return fmt.Errorf("hf %s: tensor %s: element %d is %v", f.Path, e.name, i, v)
		}
	}
	if e.hs > 0 {
		model.HalfToInterleaved(e.dst, e.hs, e.cols())
	}
	return nil
}

// where names the weight files for an error about a missing tensor.
func (w *weights) where() string {
	var names []string
	for _, f := range w.files {
		names = append(names, f.Path)
	}
	return strings.Join(names, ", ")
}
