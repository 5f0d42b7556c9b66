package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fspo/atomicfile"
	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/modelpath"
	"fspo/onpolicy"
	"fspo/runcard"
	"fspo/synth/stories"
)

// onpolicyPartial is the file an on-policy run appends each user's pairs
// to as it goes; a rerun resumes from it.
const onpolicyPartial = "onpolicy.jsonl"

// runSynthOnpolicy implements `fspo synth onpolicy`: a copy of a stories
// data folder with the policy's own answers to its training users'
// questions added as pairs, labelled by each user's exact reward.
func runSynthOnpolicy(ctx context.Context, env *Env, args []string) error {
	fl := newFlags(env, "synth onpolicy", "--data DIR --policy RUN --out DIR [--samples 4] [--passes 4] [--min-margin 0.3] [flags]")
	data := fl.String("data", "", "stories data folder whose training users label the answers")
	policy := fl.String("policy", "", "trained run (folder or model.fspo) that writes the answers; its run card gives the prompt")
	out := fl.String("out", "", "new data folder: the data's records and the on-policy pairs (rerun to resume)")
	opt := onpolicy.Options{Samples: 4, Passes: 4, MinMargin: 0.3, Temperature: 1, TopP: 0.9, Seed: 1}
	fl.IntVar(&opt.Samples, "samples", opt.Samples, "answers sampled per question; the best and the worst by the user's reward make the pair")
	fl.IntVar(&opt.Passes, "passes", opt.Passes, "passes over each user's records, each a new draw of shots and question")
	fl.Float64Var(&opt.MinMargin, "min-margin", opt.MinMargin, "reward margin a pair needs (closer best and worst answers are dropped as ties)")
	fl.Float64Var(&opt.Temperature, "temperature", opt.Temperature, "sampling temperature")
	fl.Float64Var(&opt.TopP, "topp", opt.TopP, "nucleus sampling mass in (0,1]")
	fl.IntVar(&opt.MaxTokens, "max-tokens", 0, "answer token cap (0: the longest training response)")
	fl.Int64Var(&opt.Seed, "seed", opt.Seed, "seed of the episodes and the sampling")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if *data == "" || *policy == "" || *out == "" {
		return fmt.Errorf("%w: fspo synth onpolicy: --data, --policy and --out are required", errUsage)
	}
	if filepath.Clean(*out) == filepath.Clean(*data) {
		return fmt.Errorf("%w: fspo synth onpolicy: --out must be a new folder, not --data", errUsage)
	}
	src, err := readOnpolicySource(*data)
	if err != nil {
		return err
	}
	pol, codec, err := loadOnpolicyPolicy(env, *policy, &opt)
	if err != nil {
		return err
	}
	if opt.MaxTokens == 0 {
		if opt.MaxTokens = fewshot.LongestResponse(codec.Tok, src.train); opt.MaxTokens == 0 {
			return fmt.Errorf("fspo synth onpolicy: %s: no training responses to take the answer cap from; give --max-tokens", *data)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	if err := claimOnpolicyFolder(*out, *policy, true); err != nil {
		return err
	}
	w, err := resumeOnpolicy(filepath.Join(*out, onpolicyPartial), &opt)
	if err != nil {
		return err
	}
	defer w.Close()
	pr := newProgress(env, "onpolicy users", int64(len(src.train)))
	opt.Progress = func(done, _ int) { pr.set(int64(done), "") }
	opt.Emit = func(_ string, pairs []dataset.Record) error { return writeNew(w, pairs) }
	t0 := time.Now()
	_, st, err := onpolicy.Pairs(ctx, pol.Model, codec, src.train, src.rewards, opt)
	pr.done()
	if err != nil {
		return fmt.Errorf("fspo synth onpolicy: %w (rerun to resume)", err)
	}
	n, err := writeOnpolicyFolder(*data, *out, *policy, src)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s: %d on-policy pairs after the data's %d records (this run: %d users, %d questions × %d answers, %d ties, %d questions too long for the answer cap, mean margin %.2f) in %v\n",
		*out, n-len(src.records), len(src.records), st.Users, st.Episodes, opt.Samples, st.Ties, st.Skipped, st.MeanMargin, time.Since(t0).Round(time.Millisecond))
	return nil
}

// onpolicySource is what an on-policy run reads from the data folder.
type onpolicySource struct {
	manifest dataset.Manifest
	records  []dataset.Record
	train    map[string][]dataset.Record
	rewards  map[string]onpolicy.Rewarder
}

func readOnpolicySource(dir string) (*onpolicySource, error) {
	man, err := dataset.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	if err := man.Verify(dir); err != nil {
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	users, err := stories.LoadUsers(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fspo synth onpolicy: %s has no %s: on-policy pairs are labelled by synthetic users' exact rewards (the stories domain)", dir, stories.UsersName)
	} else if err != nil {
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	recs, err := dataset.ReadAll(filepath.Join(dir, dataset.FileName))
	if err != nil {
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	src := &onpolicySource{manifest: man, records: recs, train: map[string][]dataset.Record{}, rewards: map[string]onpolicy.Rewarder{}}
	byUser := dataset.GroupByUser(recs)
	for _, u := range man.TrainUsers {
		p, ok := users.User(u)
		if !ok {
			return nil, fmt.Errorf("fspo synth onpolicy: training user %q of %s has no profile in %s", u, dataset.ManifestName, stories.UsersName)
		}
		src.train[u], src.rewards[u] = byUser[u], p
	}
	return src, nil
}

// loadOnpolicyPolicy loads the policy and sets opt.Shots from its run card;
// the card must describe a trained few-shot model.
func loadOnpolicyPolicy(env *Env, policy string, opt *onpolicy.Options) (*lmodel, fewshot.Codec, error) {
	path := onpolicyModel(policy)
	card, err := runcard.Load(path)
	if err != nil {
		return nil, fewshot.Codec{}, fmt.Errorf("fspo synth onpolicy: --policy: %w", err)
	}
	if card == nil {
		return nil, fewshot.Codec{}, fmt.Errorf("fspo synth onpolicy: --policy %s: no run card (a model trained by fspo train)", policy)
	}
	v, err := episode.ParseVariant(card.Prompt.Variant)
	if err != nil {
		return nil, fewshot.Codec{}, fmt.Errorf("fspo synth onpolicy: --policy %s: run card: %w", policy, err)
	}
	l, err := episode.ParseLayout(card.Prompt.Layout)
	if err != nil {
		return nil, fewshot.Codec{}, fmt.Errorf("fspo synth onpolicy: --policy %s: run card: %w", policy, err)
	}
	lm, err := loadLM(env, path)
	if err != nil {
		return nil, fewshot.Codec{}, err
	}
	opt.Shots = card.Prompt.Shots
	return lm, lm.codec(fewshot.Codec{Variant: v, Layout: l}), nil
}

// onpolicyModel is the model file of --policy (a run folder's model.fspo).
func onpolicyModel(policy string) string {
	if st, err := os.Stat(policy); err == nil && st.IsDir() {
		return filepath.Join(policy, modelpath.CheckpointFile)
	}
	return policy
}

// onpolicyPolicyFile, in the output folder, holds the sha256 of the policy
// whose answers the folder holds.
const onpolicyPolicyFile = "onpolicy.policy"

// claimOnpolicyFolder refuses an output folder begun or finished with
// another policy (its answers would be mixed with this one's, or stale); a
// new folder is claimed for this policy when claim is set.
func claimOnpolicyFolder(out, policy string, claim bool) error {
	sum, err := runcard.FileSHA256(onpolicyModel(policy))
	if err != nil {
		return fmt.Errorf("fspo synth onpolicy: --policy: %w", err)
	}
	path := filepath.Join(out, onpolicyPolicyFile)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(old)) != sum:
		return fmt.Errorf("fspo synth onpolicy: %s holds the answers of another policy (sha256 %s, in %s); %s is %s: remove the folder or choose another --out",
			out, strings.TrimSpace(string(old)), onpolicyPolicyFile, policy, sum)
	case errors.Is(err, os.ErrNotExist) && claim:
		return atomicfile.WriteBytes(path, []byte(sum+"\n"))
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	return nil
}

// resumeOnpolicy opens the partial file and marks the users it holds as
// done, except the last, whose pairs may have been cut short: it runs
// again and writes only what is missing.
func resumeOnpolicy(path string, opt *onpolicy.Options) (*dataset.Writer, error) {
	w, err := dataset.Append(path)
	if err != nil {
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	recs, err := dataset.ReadAll(path)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	opt.Done = map[string]bool{}
	for _, r := range recs {
		opt.Done[r.User] = true
	}
	if len(recs) > 0 {
		delete(opt.Done, recs[len(recs)-1].User)
	}
	return w, nil
}

// writeNew appends the records w does not hold yet.
func writeNew(w *dataset.Writer, recs []dataset.Record) error {
	var fresh []dataset.Record
	for _, r := range recs {
		if !w.Has(r.Key()) {
			fresh = append(fresh, r)
		}
	}
	return w.WriteBatch(fresh)
}

// writeOnpolicyFolder writes out's preferences.jsonl (the data's records,
// then the on-policy pairs), copies the data folder's other files and
// writes the manifest with the new file's hash; it returns the records
// written.
func writeOnpolicyFolder(data, out, policy string, src *onpolicySource) (int, error) {
	extra, err := dataset.ReadAll(filepath.Join(out, onpolicyPartial))
	if err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	all := append(append([]dataset.Record{}, src.records...), extra...)
	prefs := filepath.Join(out, dataset.FileName)
	// written whole on every run (the manifest, written last, names its hash)
	if err := os.Remove(prefs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	pw, err := dataset.Append(prefs)
	if err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	if err := errors.Join(pw.WriteBatch(all), pw.Close()); err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	entries, err := os.ReadDir(data)
	if err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	for _, e := range entries {
		switch e.Name() {
		case dataset.FileName, dataset.ManifestName, onpolicyPartial, onpolicyPolicyFile:
			continue // written here (a data folder made by an earlier round has its own)
		}
		if e.Type().IsRegular() {
			if err := atomicfile.Copy(filepath.Join(data, e.Name()), filepath.Join(out, e.Name())); err != nil {
				return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
			}
		}
	}
	man := src.manifest
	info, err := dataset.Describe(prefs)
	if err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	man.Files = map[string]dataset.FileInfo{dataset.FileName: info}
	man.Created = time.Now().UTC().Format(time.RFC3339)
	man.Notes = maps.Clone(man.Notes)
	if man.Notes == nil {
		man.Notes = map[string]string{}
	}
	man.Notes["onpolicy"] = fmt.Sprintf("%d pairs of %s's own answers to the training users' questions, labelled by their exact rewards (source %q, also in %s), after the %d records of %s",
		len(extra), policy, onpolicy.Source, onpolicyPartial, len(src.records), data)
	if err := dataset.WriteManifest(out, man); err != nil {
		return 0, fmt.Errorf("fspo synth onpolicy: %w", err)
	}
	return len(all), nil
}
