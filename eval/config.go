// Package eval measures how well each method personalizes (METHOD.md §4;
// Singh et al. 2025, "FSPO", arXiv 2502.19312, §5): for every held-out user
// and query it generates a response per method, judges it pairwise against
// the base model's response in both orders, and reports win rates with
// bootstrap confidence intervals over users, split by user kind, the
// implicit-reward accuracy of the preference-trained models on held-out
// pairs, and mean response lengths.
//
// Choices made here, and why:
//   - base continues the query's story opening itself (BOS + opening), not
//     the zero-shot template: stories260K never saw "Q: …\nA+: " headers,
//     and a story opening continued as a story is its natural use; the
//     training responses are such continuations too. fewshot_prompting
//     gives the same base model the few-shot prompt and forces the header.
//   - oracle is the best of K base samples under the user's true reward
//     (the upper reference available without a description-trained model).
//   - responses stop at EOS or at the longest training response's token
//     count (plus the longest description for COT), whichever comes first.
//   - a COT model writes its description greedily (DescriptionTemperature
//     0: its best guess of the user), then samples its response like every
//     other method.
//   - a COT output without its response part is a loss: the method wrote
//     no response.
//   - sequence i of a method's batch samples with seed hash(seed,
//     method)+i over episodes in a fixed order (users sorted, then
//     episode.Build's order), so a rerun is identical.
package eval

import (
	"fmt"
	"io"
	"strings"

	"fspo/fewshot"
	"fspo/judge"
	"fspo/tokenizer"
)

// The methods compared (METHOD.md §4), in report order.
const (
	Base     = "base"              // the base model, zero-shot
	FewShot  = "fewshot_prompting" // the base model with the few-shot prompt
	PrefFT   = "prefft"            // few-shot Pref-FT (stage 1)
	IPO      = "ipo"               // IPO trained without shots (non-personalized)
	FSPO     = "fspo"              // few-shot IPO (stage 2)
	FSPOCOT  = "fspo_cot"          // FSPO with the user-description chain of thought
	OracleBK = "oracle"            // best of K base samples under the true reward
	// FSPOOnPolicy is FSPO after one more few-shot IPO round, against FSPO,
	// on FSPO's own answers to the training users' questions labelled by
	// their rewards (package onpolicy; beyond the paper).
	FSPOOnPolicy = "fspo_onpolicy"
	// FSPOCOTOnPolicy is FSPOCOT after the same round on its own answers,
	// written after each user's true description (beyond the paper).
	FSPOCOTOnPolicy = "fspo_cot_onpolicy"
	// FSPOBest is the best of Config.BestOf FSPO samples under the user's
	// implicit reward β·(log πθ − log πref) (not in Methods: only with --best-of).
	FSPOBest = "fspo_best_of"
	// FSPOCOTGiven is FSPOCOT stating each user's true description instead
	// of its own guess (not in Methods: only with Config.AlsoGivenDescription).
	FSPOCOTGiven = "fspo_cot_given_description"
)

// Methods lists every method in report order.
var Methods = []string{Base, FewShot, PrefFT, IPO, FSPO, FSPOCOT, FSPOOnPolicy, FSPOCOTOnPolicy, OracleBK}

// TrainedMethods are the methods whose model is a training run.
var TrainedMethods = []string{PrefFT, IPO, FSPO, FSPOCOT, FSPOOnPolicy, FSPOCOTOnPolicy}

// PreferenceMethods are the methods trained against a reference model; their
// implicit-reward accuracy is measured.
var PreferenceMethods = []string{IPO, FSPO, FSPOCOT, FSPOOnPolicy, FSPOCOTOnPolicy}

// User kinds: trained attribute combinations, held-out combinations of seen
// values (the paper's "interpolated" users), and users with an attribute
// value never seen in training.
const (
	KindSeen         = "seen"
	KindInterpolated = "interpolated"
	KindUnseen       = "unseen"
)

// Kinds lists the user kinds in report order.
var Kinds = []string{KindSeen, KindInterpolated, KindUnseen}

// Rewarder is a user's exact reward for a response (the stories domain's
// ground truth, synth/stories' Profile).
type Rewarder interface {
	Reward(text string) float64
}

// Config is one evaluation. The zero value of a field means its default
// (Defaults); Runs and Refs are keyed by method name.
type Config struct {
	Data      string // folder with preferences.jsonl and manifest.json
	Base      string // base model checkpoint (llama2.c .bin or model.fspo)
	Tokenizer string // tokenizer file of the base model (llama2.c's format)
	// Codec, when set, is the base model's tokenizer instead of Tokenizer's
	// file (a Hugging Face or GGUF model's), and Chat its chat format.
	Codec tokenizer.Codec   `json:"-"`
	Chat  *fewshot.Chat     `json:"-"`
	Runs  map[string]string // trained methods: run folder (holding model.fspo) or model file
	// Refs overrides the reference model of a preference-trained method
	// (run folder or model file); see reference.go for the defaults.
	Refs map[string]string

	// Shots and Layout are the prompt's (as in training); 0 and "" take
	// them from the runs' cards (DefaultShots, DefaultLayout without one).
	// A value that contradicts a card is an error unless ForcePrompt.
	Shots       int
	Layout      string
	ForcePrompt bool
	Queries     int     // queries per held-out user; 0: every evaluation episode
	OracleK     int     // base samples the oracle picks from
	Temperature float64 // sampling temperature of every method
	// DescriptionTemperature is the sampling temperature of the user
	// description a COT model writes before its response (0: greedy, the
	// most likely description); the response is then sampled at
	// Temperature.
	DescriptionTemperature float64
	// GivenDescription makes a COT model state the held-out user's true
	// description (the one the oracle reads) instead of writing its own
	// guess, then answer: what a correct description is worth (the
	// answers a user who corrects the model's description would get).
	GivenDescription bool
	// COTDescriptions > 1 makes a COT model state, of its greedy description
	// and COTDescriptions−1 sampled ones, the one under which it best tells
	// the user's own labelled answers apart (pickDescriptions).
	COTDescriptions int
	// AlsoGivenDescription adds FSPOCOTGiven beside FSPOCOT's own guesses.
	AlsoGivenDescription bool
	// BestOf > 1 adds FSPOBest: the FSPO run's best of that many samples by
	// the user's implicit reward under the run's reference model.
	BestOf int
	// BestOfPerToken ranks FSPOBest's samples by the implicit reward per
	// completion token (always so for an ipo_norm run).
	BestOfPerToken bool
	// Elicitation adds report.json's "elicitation" curves (Elicitation):
	// the FSPO run with 1, 2, 4, 8 labels per user, asked at random or
	// actively, ElicitMembers plausible users (default 8) weighing the
	// active choice.
	Elicitation   bool
	ElicitMembers int
	TopP          float64 // nucleus mass; 1 turns it off
	MaxTokens     int     // response token cap; 0: the longest training response
	Seed          int64
	Beta          float64 // β of the implicit reward when a run does not record it
	Out           string  // output folder

	// Judge compares responses; nil is the exact reward judge (Rewards).
	Judge judge.Judge `json:"-"`
	// Rewards holds every held-out user's exact reward. Required by the
	// reward judge and the oracle; optional with another judge (samples then
	// still carry rewards when present).
	Rewards map[string]Rewarder `json:"-"`
	// Kinds maps held-out users to a kind; users not in it are
	// "interpolated" when the manifest lists them so, else "seen".
	Kinds map[string]string `json:"-"`
	// Progress receives progress lines; nil discards them.
	Progress io.Writer `json:"-"`
}

// The prompt of runs whose model has no run card.
const (
	DefaultShots  = 4
	DefaultLayout = "compact"
)

// Defaults are the settings of the default demo (stories260K, compact layout).
func Defaults() Config {
	return Config{
		Shots: DefaultShots, Layout: DefaultLayout, Queries: 4, OracleK: 8,
		Temperature: 1, TopP: 0.9, Seed: 1, Beta: 0.05,
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var bad []string
	if c.Data == "" {
		bad = append(bad, "data: missing (the folder with preferences.jsonl and manifest.json)")
	}
	if c.Base == "" {
		bad = append(bad, "base: missing (the base model checkpoint)")
	}
	if c.Tokenizer == "" && c.Codec == nil {
		bad = append(bad, "tokenizer: missing")
	}
	if c.Out == "" {
		bad = append(bad, "out: missing (the output folder)")
	}
	for m := range c.Runs {
		if !isOneOf(m, TrainedMethods) {
			bad = append(bad, fmt.Sprintf("runs: %q is not a trained method (want one of %s)", m, strings.Join(TrainedMethods, ", ")))
		}
	}
	for m := range c.Refs {
		if !isOneOf(m, PreferenceMethods) {
			bad = append(bad, fmt.Sprintf("refs: %q is not a preference-trained method (want one of %s)", m, strings.Join(PreferenceMethods, ", ")))
		}
	}
	if c.Shots < 1 {
		bad = append(bad, fmt.Sprintf("shots: %d must be at least 1", c.Shots))
	}
	if c.Queries < 0 {
		bad = append(bad, fmt.Sprintf("queries: %d must not be negative", c.Queries))
	}
	if c.BestOf < 0 || c.BestOf > 16 {
		bad = append(bad, fmt.Sprintf("best of: %d must be 0 (off) to 16", c.BestOf))
	}
	if c.COTDescriptions < 0 || c.COTDescriptions > 16 {
		bad = append(bad, fmt.Sprintf("cot descriptions: %d must be 0 (greedy only) to 16", c.COTDescriptions))
	}
	if c.ElicitMembers < 0 || c.ElicitMembers > 64 {
		bad = append(bad, fmt.Sprintf("elicit members: %d must be 0 (the default, 8) to 64", c.ElicitMembers))
	}
	if c.OracleK < 1 {
		bad = append(bad, fmt.Sprintf("oracle k: %d must be at least 1", c.OracleK))
	}
	if c.Temperature < 0 || !(c.TopP > 0 && c.TopP <= 1) {
		bad = append(bad, fmt.Sprintf("temperature %g must be ≥ 0 and top-p %g in (0,1]", c.Temperature, c.TopP))
	}
	if !(c.DescriptionTemperature >= 0) {
		bad = append(bad, fmt.Sprintf("description temperature %g must be ≥ 0", c.DescriptionTemperature))
	}
	if c.MaxTokens < 0 {
		bad = append(bad, fmt.Sprintf("max tokens: %d must not be negative", c.MaxTokens))
	}
	if !(c.Beta > 0) {
		bad = append(bad, fmt.Sprintf("beta: %g must be positive", c.Beta))
	}
	for u, k := range c.Kinds {
		if !isOneOf(k, Kinds) {
			bad = append(bad, fmt.Sprintf("kinds: user %q has kind %q (want seen, interpolated or unseen)", u, k))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("eval config: %s", strings.Join(bad, "; "))
	}
	return nil
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "eval: "+format+"\n", args...)
	}
}
