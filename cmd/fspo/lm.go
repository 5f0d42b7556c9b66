package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"fspo/atomicfile"
	"fspo/fewshot"
	"fspo/gguf"
	"fspo/hf"
	"fspo/model"
	"fspo/modelpath"
	"fspo/tensor"
	"fspo/tokenizer"
	"fspo/tokenizer/chat"
	tokhf "fspo/tokenizer/hf"
)

// lmodel is a loaded model with what writing and reading its text takes.
type lmodel struct {
	*model.Model
	Tok tokenizer.Codec
	// L2C is llama2.c's tokenizer of a llama2.c-vocabulary model (run.c's
	// exact text output and the stories synthesizer use it); nil otherwise.
	L2C *tokenizer.Tokenizer
	// Chat is a chat model's conversation format (from its chat template);
	// nil for a base model.
	Chat *fewshot.Chat
	// GGUF is the vocabulary of a model read from GGUF, which its run
	// folders carry along; nil otherwise.
	GGUF  *gguf.Tokenizer
	Paths modelpath.Paths
	// Stored is the type the model file keeps its matrices in (F32 for
	// llama2.c files and fspo checkpoints); see useDType.
	Stored tensor.DType
}

// dtypeHelp is the help of the --dtype flag of the inference commands.
const dtypeHelp = "type to hold the weight matrices in for inference: auto (the model file's: bf16/f16 for most Hugging Face models, the GGUF file's type), f32, f16, bf16 or q8_0"

// kvCacheFlag registers --kv-cache into dt: how the model's KV caches
// store keys and values (model.SetKVCache), checked as the flags are parsed.
func kvCacheFlag(fs *flag.FlagSet, dt *tensor.DType) {
	*dt = tensor.F32
	fs.Func("kv-cache", "how KV caches store keys and values: f32 (default; the model's own arithmetic) or f16 (half the memory — twice the prompts in --prefix-cache-mb — and half the bytes attention reads; each key and value rounded to 11 significant bits, as llama.cpp keeps them)", func(v string) error {
		d, err := tensor.ParseDType(v)
		if err == nil && d != tensor.F32 && d != tensor.F16 {
			err = fmt.Errorf("want f32 or f16")
		}
		*dt = d
		return err
	})
}

// loadLMAs is loadLM, then useDType(dtype). A Hugging Face folder or a
// GGUF file is loaded straight into a reduced type (hf.LoadAs, gguf.LoadAs:
// no F32 copy of the model).
func loadLMAs(env *Env, flag, dtype string) (*lmodel, error) {
	var lm *lmodel
	var err error
	switch {
	case flag != "" && exists(filepath.Join(flag, "tokenizer.json")) && hf.IsFolder(flag):
		lm, err = loadHFChat(flag, dtype)
	case flag != "" && gguf.IsGGUF(flag):
		lm, err = loadGGUF(flag, dtype)
	default:
		lm, err = loadLM(env, flag)
	}
	if err != nil {
		return nil, err
	}
	if err := lm.useDType(env, dtype); err != nil {
		return nil, err
	}
	return lm, nil
}

// useDType holds the model's matrices in the type flag names ("" or auto:
// the file's type). A model in a reduced type runs inference and can be
// the frozen base of an adapter (lora.base_dtype); it can no longer be
// trained whole or saved as F32.
func (l *lmodel) useDType(env *Env, flag string) error {
	dt, err := parseDTypeFlag(flag, l.Stored)
	if err != nil {
		return err
	}
	if err := l.Model.SetDType(dt); err != nil {
		return fmt.Errorf("model %s: %w", l.Paths.Checkpoint, err)
	}
	if fb := l.Model.Fallbacks(); len(fb) > 0 {
		fmt.Fprintf(env.Stderr, "fspo: q8_0 needs rows a multiple of 32 long: %d matrices (%s, …) kept in f16\n", len(fb), fb[0])
	}
	return nil
}

// tokenizerFiles are the files of a Hugging Face tokenizer a run folder
// carries along.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"}

// carryTokenizer writes what loading a run folder of this model needs
// besides model.fspo into dir: the tokenizer files.
func (l *lmodel) carryTokenizer(dir string) error {
	switch {
	case l.L2C != nil:
		return atomicfile.Copy(l.Paths.Tokenizer, filepath.Join(dir, filepath.Base(l.Paths.Tokenizer)))
	case l.GGUF != nil:
		return gguf.WriteTokenizer(filepath.Join(dir, gguf.TokenizerFile), l.GGUF)
	}
	src := filepath.Dir(l.Paths.Tokenizer)
	for _, name := range tokenizerFiles {
		if exists(filepath.Join(src, name)) {
			if err := atomicfile.Copy(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// codec is the fewshot codec of the model for a variant and layout.
func (m *lmodel) codec(c fewshot.Codec) fewshot.Codec {
	c.Tok, c.Chat = m.Tok, m.Chat
	return c
}

// loadLM resolves --model and loads any supported model: a Hugging Face
// folder with tokenizer.json (its chat template from tokenizer_config.json,
// extra stop ids from generation_config.json), a GGUF file (its vocabulary
// and tokenizer.chat_template), or a llama2.c / fspo checkpoint with its
// llama2.c tokenizer.
func loadLM(env *Env, flag string) (*lmodel, error) {
	if filepath.Base(flag) == modelpath.CheckpointFile { // a run folder's model: the folder carries the tokenizer
		if dir := filepath.Dir(flag); exists(filepath.Join(dir, "tokenizer.json")) || exists(filepath.Join(dir, gguf.TokenizerFile)) {
			flag = dir
		}
	}
	switch {
	case flag != "" && exists(filepath.Join(flag, "tokenizer.json")):
		return loadHFChat(flag, "f32")
	case flag != "" && exists(filepath.Join(flag, gguf.TokenizerFile)):
		m, err := model.Load(filepath.Join(flag, modelpath.CheckpointFile))
		if err != nil {
			return nil, err
		}
		meta, err := gguf.ReadTokenizerFile(filepath.Join(flag, gguf.TokenizerFile))
		if err != nil {
			return nil, err
		}
		return ggufDialect(m, meta, filepath.Join(flag, modelpath.CheckpointFile), filepath.Join(flag, gguf.TokenizerFile))
	case flag != "" && gguf.IsGGUF(flag):
		return loadGGUF(flag, "f32")
	}
	m, tok, paths, err := loadModelPaths(env, flag)
	if err != nil {
		return nil, err
	}
	return &lmodel{Model: m, Tok: tokenizer.Llama2C(tok), L2C: tok, Paths: paths}, nil
}

// loadGGUF loads a GGUF model file with its matrices in dtype (as --dtype
// names it; auto: the file's type).
func loadGGUF(path, dtype string) (*lmodel, error) {
	stored, err := gguf.WeightType(path)
	if err != nil {
		return nil, err
	}
	dt, err := parseDTypeFlag(dtype, stored)
	if err != nil {
		return nil, err
	}
	m, meta, err := gguf.LoadAs(path, dt)
	if err != nil {
		return nil, err
	}
	l, err := ggufDialect(m, meta, path, path)
	if err != nil {
		return nil, err
	}
	l.Stored = stored
	return l, nil
}

// parseDTypeFlag reads --dtype: auto (or "") is stored.
func parseDTypeFlag(flag string, stored tensor.DType) (tensor.DType, error) {
	if flag == "" || flag == "auto" {
		return stored, nil
	}
	dt, err := tensor.ParseDType(flag)
	if err != nil {
		return dt, fmt.Errorf("%w: --dtype: %v", errUsage, err)
	}
	return dt, nil
}

// hfDType is the type --dtype names for a Hugging Face folder: auto (or
// "") is the type its weights are stored in.
func hfDType(dir, flag string) (tensor.DType, error) {
	if flag != "" && flag != "auto" {
		return parseDTypeFlag(flag, tensor.F32)
	}
	stored, err := hf.StoredDType(dir)
	if err != nil {
		return tensor.F32, err
	}
	dt, err := tensor.ParseDType(string(stored))
	if err != nil {
		return tensor.F32, nil // a type the engine does not hold matrices in: F32
	}
	return dt, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadHFChat loads a folder with tokenizer.json: a Hugging Face model
// (its matrices in dtype, as --dtype names it), or a run folder
// (model.fspo) trained from one.
func loadHFChat(dir, dtype string) (*lmodel, error) {
	var m *model.Model
	var err error
	file := dir
	stored := tensor.F32
	if hf.IsFolder(dir) {
		var f *hf.Folder
		var dt tensor.DType
		if dt, err = hfDType(dir, dtype); err != nil {
			return nil, err
		}
		if m, f, err = hf.LoadAs(dir, dt); err == nil {
			stored, _ = tensor.ParseDType(string(f.DType))
		}
	} else {
		file = filepath.Join(dir, modelpath.CheckpointFile)
		m, err = model.Load(file)
	}
	if err != nil {
		return nil, err
	}
	tok, err := tokhf.Load(dir)
	if err != nil {
		return nil, err
	}
	l := &lmodel{Model: m, Tok: tok, Paths: modelpath.Paths{Checkpoint: file, Tokenizer: filepath.Join(dir, "tokenizer.json")}, Stored: stored}
	if err := l.checkVocab(); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	var probe struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	data, err := readOptionalJSON(cfgPath, &probe)
	if err != nil || data == nil || len(probe.ChatTemplate) == 0 || string(probe.ChatTemplate) == "null" {
		return l, err // no template: a base model
	}
	tpl, err := chat.FromConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	stops, err := generationStops(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, err
	}
	if l.Chat, err = fewshot.NewChat(tok, tpl, chat.Options{}, stops...); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	return l, nil
}

// generationStops reads eos_token_id (a number or a list) from
// generation_config.json; none when the file is absent.
func generationStops(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	g, err := hf.ParseGenerationConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g.EOS, nil
}

// ggufDialect completes a model read from GGUF (or trained from one) with
// the tokenizer and chat template of its GGUF metadata.
func ggufDialect(m *model.Model, meta *gguf.Tokenizer, path, tokPath string) (*lmodel, error) {
	if meta == nil {
		return nil, fmt.Errorf("gguf %s: no tokenizer.ggml.model: the file carries no tokenizer", path)
	}
	tok, err := meta.Codec()
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	l := &lmodel{Model: m, Tok: tok, GGUF: meta, Paths: modelpath.Paths{Checkpoint: path, Tokenizer: tokPath}}
	if err := l.checkVocab(); err != nil {
		return nil, err
	}
	if meta.ChatTemplate == "" {
		return l, nil
	}
	tpl, err := chat.Compile(meta.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: tokenizer.chat_template: %w", path, err)
	}
	if meta.BOS >= 0 {
		tpl.BOS = tok.Piece(meta.BOS)
	}
	if meta.EOS >= 0 {
		tpl.EOS = tok.Piece(meta.EOS)
	}
	var extra []int
	if meta.EOT >= 0 {
		extra = append(extra, meta.EOT)
	}
	if l.Chat, err = fewshot.NewChat(tok, tpl, chat.Options{}, extra...); err != nil {
		return nil, fmt.Errorf("gguf %s: tokenizer.chat_template: %w", path, err)
	}
	return l, nil
}

func (l *lmodel) checkVocab() error {
	if n := l.Tok.VocabSize(); n > l.Config.Vocab {
		return fmt.Errorf("model %s: the tokenizer %s has %d tokens but the embedding only %d rows", l.Paths.Checkpoint, l.Paths.Tokenizer, n, l.Config.Vocab)
	}
	return nil
}

// readOptionalJSON decodes the JSON file at path into v and returns its
// bytes; nil bytes and no error when the file does not exist.
func readOptionalJSON(path string, v any) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
