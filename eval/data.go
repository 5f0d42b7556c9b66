package eval

import (
	"fmt"
	"path/filepath"
	"sort"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/tokenizer"
)

// PreferencesFile is the preference data's file name inside a data folder.
const PreferencesFile = "preferences.jsonl"

// data is the evaluation's view of a data folder.
type data struct {
	manifest dataset.Manifest
	train    map[string][]dataset.Record // training users' records
	test     map[string][]dataset.Record // held-out users' records
	episodes []episode.Episode           // the evaluated episodes, by user then query
	kinds    map[string]string           // held-out user → kind
	others   *episode.Others             // descriptions for COT rejected completions
}

// loadData reads the manifest and the preferences, checks the files against
// the manifest's hashes, and builds the evaluation episodes: one pass over
// each held-out user's records (episode.EvalPasses), the first Queries
// episodes of each user.
func loadData(c Config) (*data, error) {
	man, err := dataset.ReadManifest(c.Data)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if err := man.Verify(c.Data); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	path := filepath.Join(c.Data, PreferencesFile)
	recs, err := dataset.ReadAll(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	byUser := dataset.GroupByUser(recs)
	d := &data{manifest: man, train: map[string][]dataset.Record{}, test: map[string][]dataset.Record{}, kinds: map[string]string{}}
	for _, u := range man.TrainUsers {
		d.train[u] = byUser[u]
	}
	interp := map[string]bool{}
	for _, u := range man.Interpolated {
		interp[u] = true
	}
	for _, u := range man.TestUsers {
		if len(byUser[u]) == 0 {
			return nil, fmt.Errorf("eval: %s: held-out user %q (manifest test_users) has no records", path, u)
		}
		d.test[u] = byUser[u]
		switch k, ok := c.Kinds[u]; {
		case ok:
			d.kinds[u] = k
		case interp[u]:
			d.kinds[u] = KindInterpolated
		default:
			d.kinds[u] = KindSeen
		}
	}
	if len(d.test) == 0 {
		return nil, fmt.Errorf("eval: %s lists no held-out users (test_users)", filepath.Join(c.Data, dataset.ManifestName))
	}
	perUser := map[string]int{}
	for _, ep := range episode.Build(d.test, c.Shots, episode.EvalPasses, c.Seed) {
		if c.Queries > 0 && perUser[ep.User] >= c.Queries {
			continue
		}
		perUser[ep.User]++
		d.episodes = append(d.episodes, ep)
	}
	var short []string
	for u := range d.test {
		if perUser[u] == 0 {
			short = append(short, fmt.Sprintf("%s (%d records)", u, len(d.test[u])))
		}
	}
	if len(short) > 0 {
		sort.Strings(short)
		return nil, fmt.Errorf("eval: held-out users with fewer than %d records make no %d-shot episode: %v", c.Shots+1, c.Shots, short)
	}
	d.others = episode.NewOthers(episode.Descriptions(byUser))
	return d, nil
}

// caps are token limits derived from the training responses, so every
// method may write as much as the training data showed.
type caps struct {
	response    int // longest training response (chosen or rejected)
	description int // longest description
}

func measureCaps(tok tokenizer.Codec, train map[string][]dataset.Record) (caps, error) {
	c := caps{response: fewshot.LongestResponse(tok, train)}
	for _, recs := range train {
		for _, r := range recs {
			c.description = max(c.description, len(tok.Encode(r.Description, false)), len(tok.Encode(r.RejectedDescription, false)))
		}
	}
	if c.response == 0 {
		return c, fmt.Errorf("eval: no training records to measure response lengths from (give the token cap explicitly)")
	}
	return c, nil
}
