package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fspo/atomicfile"
	"fspo/ckpt"
	"fspo/gguf"
	"fspo/hf"
	"fspo/model"
	"fspo/ollama"
	"fspo/runcard"
	"fspo/safetensors"
	tokhf "fspo/tokenizer/hf"
)

func init() {
	register(&command{name: "convert", summary: "convert a checkpoint: to llama2.c's format (.bin), fspo's own (.fspo) or a Hugging Face folder", run: runConvert})
}

func runConvert(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "convert", "--model M --out FILE.bin|FILE.fspo|FILE.gguf|FOLDER [--dtype f32|f16|bf16|q8_0] [--quantize q8_0] | --adapter RUN/adapter.fspo --out FOLDER|FILE.gguf")
	modelFlag := fs.String("model", "", "checkpoint file, run folder's model.fspo, model folder or name")
	out := fs.String("out", "", "output: FILE.bin writes llama2.c's format, FILE.fspo the project's, FILE.gguf llama.cpp's (with the tokenizer and chat template), any other name a Hugging Face folder")
	adapter := fs.String("adapter", "", "a LoRA adapter (a LoRA run's adapter.fspo) to write instead of a model: --out FOLDER gives a PEFT adapter folder, --out FILE.gguf a llama.cpp LoRA adapter")
	to := fs.String("to", "", "ollama: --out FOLDER gets model.gguf and an Ollama Modelfile (TEMPLATE from the chat template; --adapter adds ADAPTER); default: by --out's name")
	baseName := fs.String("base-name", "", "with --adapter: the base model's name the output records (default: the run card's initial model)")
	dtype := fs.String("dtype", "", "weights dtype: f32, f16 or bf16 for a Hugging Face folder (default: the input folder's, else f32); also q8_0 for GGUF (default f16)")
	quantize := fs.String("quantize", "", "q8_0: write 8-bit weights (GGUF's Q8_0: 32 int8 values and an F16 scale per block; llama.cpp's own quantizer's values) — the same as --dtype q8_0, for a GGUF output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: fspo convert: --out is required", errUsage)
	}
	if *quantize != "" {
		if !strings.EqualFold(*quantize, "q8_0") || (*dtype != "" && !strings.EqualFold(*dtype, *quantize)) {
			return fmt.Errorf("%w: fspo convert: --quantize %q: only q8_0 (and no other --dtype)", errUsage, *quantize)
		}
		if !strings.HasSuffix(*out, ".gguf") && *to != "ollama" {
			return fmt.Errorf("%w: fspo convert: --quantize q8_0 writes GGUF: give --out FILE.gguf (or --to ollama)", errUsage)
		}
		*dtype = "q8_0"
	}
	switch {
	case *to == "ollama":
		return convertOllama(env, *modelFlag, *adapter, *out, *dtype)
	case *to != "":
		return fmt.Errorf("%w: fspo convert: --to %q: only ollama (other formats follow --out's name)", errUsage, *to)
	case *adapter != "":
		return convertAdapter(env, *adapter, *out, *baseName)
	case strings.HasSuffix(*out, ".gguf"):
		_, err := convertGGUF(env, *modelFlag, *out, *dtype)
		return err
	}
	var m *model.Model
	var src *hf.Folder // a Hugging Face output keeps its config fields, dtype and tokenizer files
	var lm *lmodel
	var err error
	if hf.IsFolder(*modelFlag) {
		m, src, err = hf.Load(*modelFlag)
	} else if lm, err = loadLM(env, *modelFlag); err == nil {
		m = lm.Model
		src, err = baseFolder(lm)
	}
	if err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(*out, ".bin"):
		err = m.WriteLlama2C(*out)
	case strings.HasSuffix(*out, ".fspo"):
		var cp *ckpt.Checkpoint
		if cp, err = m.Checkpoint(); err == nil {
			err = ckpt.Save(*out, cp)
		}
	default:
		d := safetensors.DType(strings.ToUpper(*dtype))
		if d != "" && !d.Supported() {
			return fmt.Errorf("%w: fspo convert: --dtype must be f32, f16 or bf16", errUsage)
		}
		if err = hf.Save(*out, m, src, d); err == nil && src == nil && lm.L2C != nil { // a llama2.c tokenizer goes along
			err = atomicfile.Copy(lm.Paths.Tokenizer, filepath.Join(*out, filepath.Base(lm.Paths.Tokenizer)))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s (%d parameters)\n", *out, m.Config.NumParams())
	return nil
}

// convertGGUF writes any model loadLM reads as a GGUF file with its
// vocabulary and chat template, weights in dtype (F16 by default).
func convertGGUF(env *Env, flag, out, dtype string) (*lmodel, error) {
	types := map[string]gguf.TensorType{"": gguf.F16, "f32": gguf.F32, "f16": gguf.F16, "bf16": gguf.BF16, "q8_0": gguf.Q8_0}
	typ, ok := types[strings.ToLower(dtype)]
	if !ok {
		return nil, fmt.Errorf("%w: fspo convert: --dtype for GGUF must be f32, f16, bf16 or q8_0", errUsage)
	}
	lm, err := loadLM(env, flag)
	if err != nil {
		return nil, err
	}
	var meta *gguf.Tokenizer
	switch tok := lm.Tok.(type) {
	case *tokhf.Tokenizer:
		tpl := ""
		if lm.Chat != nil {
			tpl = lm.Chat.Template.Source
		}
		if meta, err = gguf.FromHF(tok, tpl, lm.Config.Vocab); err != nil {
			return nil, fmt.Errorf("convert %s: %w", lm.Paths.Tokenizer, err)
		}
	default:
		switch {
		case lm.GGUF != nil:
			meta = lm.GGUF
		case lm.L2C != nil:
			meta = gguf.FromLlama2C(lm.L2C)
		default:
			return nil, fmt.Errorf("convert %s: this tokenizer cannot be written to GGUF", lm.Paths.Tokenizer)
		}
	}
	name := filepath.Base(strings.TrimSuffix(lm.Paths.Checkpoint, filepath.Ext(lm.Paths.Checkpoint)))
	if err := gguf.WriteModel(out, lm.Config, lm.W, meta, gguf.WriteOptions{Type: typ, Name: name}); err != nil {
		return nil, fmt.Errorf("convert %s: %w", out, err)
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s (%d parameters, %s)\n", out, lm.Config.NumParams(), typ)
	return lm, nil
}

// convertOllama writes dir/model.gguf (and dir/adapter.gguf from a LoRA
// adapter) with a Modelfile for `ollama create NAME -f dir/Modelfile`.
func convertOllama(env *Env, flag, adapter, dir, dtype string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lm, err := convertGGUF(env, flag, filepath.Join(dir, "model.gguf"), dtype)
	if err != nil {
		return err
	}
	if lm.Chat == nil {
		return fmt.Errorf("convert: %s has no chat template: Ollama needs one to chat (generate with the GGUF directly)", lm.Paths.Checkpoint)
	}
	f, err := ollama.FromChat(lm.Chat.Template)
	if err != nil {
		return fmt.Errorf("convert %s: %w", lm.Paths.Checkpoint, err)
	}
	ad := ""
	if adapter != "" {
		ad = "./adapter.gguf"
		if err := convertAdapter(env, adapter, filepath.Join(dir, "adapter.gguf"), ""); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "Modelfile"), []byte(ollama.Modelfile("./model.gguf", ad, f))); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "convert: wrote %s; ollama create NAME -f %s\n", filepath.Join(dir, "Modelfile"), filepath.Join(dir, "Modelfile"))
	return nil
}

// baseFolder is the Hugging Face folder a trained model's run card names as
// its base, when it still exists; nil for other models.
func baseFolder(lm *lmodel) (*hf.Folder, error) {
	card, err := runcard.Load(lm.Paths.Checkpoint)
	if err != nil || card == nil || !hf.IsFolder(card.Base.Path) {
		return nil, err
	}
	f, _, err := hf.ReadFolder(card.Base.Path)
	return f, err
}
