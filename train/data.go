package train

import (
	"fmt"
	"path/filepath"
	"sort"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
)

// PreferencesFile is the dataset's record file inside a data folder.
const PreferencesFile = "preferences.jsonl"

// Data chooses which examples a stage trains on.
type Data struct {
	Dir     string          // holds preferences.jsonl and manifest.json
	Variant episode.Variant // prompt template
	Layout  episode.Layout
	Shots   int   // N; 0 for the non-personalized (zero-shot) variant
	Passes  int   // episode passes over each user's records; 0: 2(N+1) as in METHOD.md §2
	Seed    int64 // episode shuffles
	Users   string
	// MaxDropped is the share of episodes that may be left out for not
	// fitting the model's positions (counted in DataStats.Dropped); more is
	// an error.
	MaxDropped float64
}

// DataStats says what Prepare built.
type DataStats struct {
	Users, Records, Episodes int
	Dropped                  int    // episodes left out for not fitting the context
	PromptTokens             [3]int // min, mean, max
	CompletionTokens         [3]int
	Positions                int // longest prompt + completion
}

// Prepare reads the training users' records and builds tokenized episodes.
// It fails before any training when the data cannot make the episodes asked
// for: a user with fewer than N+1 records, or episodes longer than maxPositions.
func Prepare(d Data, codec fewshot.Codec, maxPositions int) ([]Item, DataStats, error) {
	var st DataStats
	man, err := dataset.ReadManifest(d.Dir)
	if err != nil {
		return nil, st, err
	}
	path := filepath.Join(d.Dir, PreferencesFile)
	all, err := dataset.ReadAll(path)
	if err != nil {
		return nil, st, err
	}
	users := man.TrainUsers
	if d.Users == "test" {
		users = man.TestUsers
	}
	if len(users) == 0 {
		return nil, st, fmt.Errorf("%s: the manifest lists no %s users", filepath.Join(d.Dir, dataset.ManifestName), map[bool]string{true: "test", false: "train"}[d.Users == "test"])
	}
	keep := map[string]bool{}
	for _, u := range users {
		keep[u] = true
	}
	var recs []dataset.Record
	for _, r := range all {
		if keep[r.User] {
			recs = append(recs, r)
		}
	}
	n := d.Shots
	if d.Variant == episode.ZeroShot {
		n = 0
	}
	if err := dataset.Validate(recs, n+1); err != nil {
		return nil, st, fmt.Errorf("%s: %w", path, err)
	}
	byUser := dataset.GroupByUser(recs)
	for _, u := range users {
		if len(byUser[u]) == 0 {
			return nil, st, fmt.Errorf("%s: train user %q of the manifest has no records", path, u)
		}
	}
	passes := d.Passes
	if passes <= 0 {
		passes = episode.TrainPasses(n)
	}
	eps := episode.Build(byUser, n, passes, d.Seed)
	others := episode.NewOthers(episode.Descriptions(byUser))
	items := make([]Item, 0, len(eps))
	var tooLong []string
	st.PromptTokens[0], st.CompletionTokens[0] = 1<<30, 1<<30
	var sumP, sumC int
	for _, ep := range eps {
		p, c, r, err := codec.Encode(ep, others.For(ep, d.Seed))
		if err != nil {
			return nil, st, fmt.Errorf("user %s: %w", ep.User, err)
		}
		need := fewshot.Positions(p, c, r)
		if need > maxPositions {
			tooLong = append(tooLong, fmt.Sprintf("user %s (%d positions)", ep.User, need))
			continue
		}
		st.Positions = max(st.Positions, need)
		st.PromptTokens[0], st.PromptTokens[2] = min(st.PromptTokens[0], len(p)), max(st.PromptTokens[2], len(p))
		st.CompletionTokens[0], st.CompletionTokens[2] = min(st.CompletionTokens[0], len(c), len(r)), max(st.CompletionTokens[2], len(c), len(r))
		sumP += len(p)
		sumC += len(c) + len(r)
		items = append(items, Item{User: ep.User, Prompt: p, Chosen: c, Rejected: r})
	}
	if len(tooLong) > 0 && float64(len(tooLong)) > d.MaxDropped*float64(len(eps)) {
		sort.Strings(tooLong)
		return nil, st, fmt.Errorf("%s: %d of %d episodes with %d shots do not fit the model's %d positions (first: %s); use fewer shots or shorter responses", path, len(tooLong), len(eps), n, maxPositions, tooLong[0])
	}
	if len(items) == 0 {
		return nil, st, fmt.Errorf("%s: no episodes", path)
	}
	st.Users, st.Records, st.Episodes, st.Dropped = len(byUser), len(recs), len(items), len(tooLong)
	st.PromptTokens[1] = sumP / len(items)
	st.CompletionTokens[1] = sumC / (2 * len(items))
	return items, st, nil
}
