package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"time"

	"fspo/dataset"
)

// runInfo identifies a run's output; it is saved as run.json so that a
// rerun into the same directory must be the same run, and merge can check
// that parts belong together.
type runInfo struct {
	Recipe     string `json:"recipe"`
	RecipeHash string `json:"recipe_hash"`
	Seed       int64  `json:"seed"`
	Users      int    `json:"users"`
	Questions  int    `json:"questions"`
	Responses  int    `json:"responses"`
	Shard      int    `json:"shard"`
	Shards     int    `json:"shards"`
}

func newRunInfo(c Config) runInfo {
	return runInfo{Recipe: c.Recipe.Name, RecipeHash: c.Recipe.Hash(), Seed: c.Seed, Users: c.Users,
		Questions: c.Questions, Responses: c.Responses, Shard: c.Shard, Shards: c.Shards}
}

func readRunInfo(dir string) (runInfo, error) {
	var ri runInfo
	data, err := os.ReadFile(partPath(dir, "run.json"))
	if err != nil {
		return ri, fmt.Errorf("read run info: %w", err)
	}
	if err := json.Unmarshal(data, &ri); err != nil {
		return ri, fmt.Errorf("read run info %s: %w", partPath(dir, "run.json"), err)
	}
	return ri, nil
}

// claim writes run.json, or checks that an existing one describes the same
// run (a resumed command), naming the first differing field.
func (ri runInfo) claim(dir string) error {
	old, err := readRunInfo(dir)
	if errors.Is(err, os.ErrNotExist) {
		data, _ := json.MarshalIndent(ri, "", "  ")
		if err := os.WriteFile(partPath(dir, "run.json"), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if f := firstDiff(old, ri, nil); f != "" {
		return fmt.Errorf("synth: %s holds another run (%s); rerun the same command to resume, or choose another --out", dir, f)
	}
	return nil
}

// firstDiff names the first field (not in skip) that differs between a and b.
func firstDiff(a, b runInfo, skip map[string]bool) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		if skip[tag] {
			continue
		}
		if x, y := va.Field(i).Interface(), vb.Field(i).Interface(); x != y {
			return fmt.Sprintf("%s: %v there, %v here", tag, x, y)
		}
	}
	return ""
}

// split assigns users to train and test: the recipe's held-out users go to
// test (and to Interpolated: unseen combinations of trained traits); of the
// others, dataset.Split holds out round(TestFraction·n). Every shard
// computes the same split: it depends only on the full user list and seed.
func split(r *Recipe, seed int64, users []*user) (train, test, interp []string) {
	var rest []string
	for _, u := range users {
		switch {
		case !u.ok:
		case u.HeldOut:
			interp = append(interp, u.ID)
		default:
			rest = append(rest, u.ID)
		}
	}
	train, test = dataset.Split(rest, r.TestFraction, seed)
	test = append(test, interp...)
	sort.Strings(test)
	sort.Strings(interp)
	return train, test, interp
}

// saveManifest writes dir/manifest.json for preferences.jsonl with the split.
func saveManifest(dir string, ri runInfo, train, test, interp []string) error {
	fi, err := dataset.Describe(partPath(dir, dataset.FileName))
	if err != nil {
		return fmt.Errorf("synth manifest: %w", err)
	}
	cfg, _ := json.Marshal(ri)
	m := dataset.Manifest{
		Version: dataset.ManifestVersion, Domain: ri.Recipe, Seed: ri.Seed,
		Created:    time.Now().UTC().Format(time.RFC3339),
		TrainUsers: nonNil(train), TestUsers: nonNil(test), Interpolated: interp,
		Files:  map[string]dataset.FileInfo{dataset.FileName: fi},
		Config: cfg,
		Notes:  map[string]string{"recipe_hash": ri.RecipeHash, "shard": fmt.Sprintf("%d/%d", ri.Shard, ri.Shards)},
	}
	if err := dataset.WriteManifest(dir, m); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// part is one part directory being merged.
type part struct {
	dir  string
	info runInfo
	rd   *dataset.Reader
	head *dataset.Record
	idx  int // user index of head
}

func (p *part) next() error {
	r, err := p.rd.Next()
	if errors.Is(err, io.EOF) {
		p.head = nil
		return nil
	}
	if err != nil {
		return err
	}
	s, ok := r.Meta["user_index"]
	idx, err := strconv.Atoi(s)
	if !ok || err != nil {
		return fmt.Errorf("%s:%d: meta.user_index: missing or not an integer (%q)", partPath(p.dir, dataset.FileName), p.rd.Line(), s)
	}
	if idx%p.info.Shards != p.info.Shard {
		return fmt.Errorf("%s:%d: user %s (index %d) does not belong to shard %d/%d", partPath(p.dir, dataset.FileName), p.rd.Line(), r.User, idx, p.info.Shard, p.info.Shards)
	}
	if p.head != nil && idx < p.idx {
		return fmt.Errorf("%s:%d: user index %d after %d: records out of order", partPath(p.dir, dataset.FileName), p.rd.Line(), idx, p.idx)
	}
	p.head, p.idx = &r, idx
	return nil
}

// Merge joins the part directories of a sharded run into out: it checks that
// they share recipe, seed and settings, cover every shard exactly once and
// hold disjoint users, then interleaves their records in user order (the
// order an unsharded run writes), streaming. The manifest must agree
// between parts; the report sums the parts' (no disagreement matrix: it
// needs users from several parts).
func Merge(ctx context.Context, out string, dirs []string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, errors.New("synth merge: no part directories")
	}
	parts, err := readParts(dirs)
	if err != nil {
		return nil, err
	}
	manifest, err := sameSplit(parts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("synth merge: %w", err)
	}
	merged := parts[0].info
	merged.Shard, merged.Shards = 0, 1
	if err := merged.claim(out); err != nil {
		return nil, err
	}
	w, err := dataset.Append(partPath(out, dataset.FileName))
	if err != nil {
		return nil, fmt.Errorf("synth merge: %w", err)
	}
	defer w.Close()
	rep := &Report{Recipe: merged.Recipe, RecipeHash: merged.RecipeHash, Seed: merged.Seed, Shard: "merged"}
	for _, p := range parts {
		rd, err := dataset.Open(partPath(p.dir, dataset.FileName))
		if err != nil {
			return nil, fmt.Errorf("synth merge: %w", err)
		}
		defer rd.Close()
		p.rd = rd
		if err := p.next(); err != nil {
			return nil, fmt.Errorf("synth merge: %w", err)
		}
		prep, err := readReport(p.dir)
		if err != nil {
			return nil, fmt.Errorf("synth merge: part %s: %w", p.dir, err)
		}
		rep.add(prep)
		rep.Parts = append(rep.Parts, PartReport{Dir: p.dir, Shard: prep.Shard, Records: prep.Records})
	}
	if rep.Written, err = mergeRecords(ctx, parts, w); err != nil {
		return nil, err
	}
	sort.Slice(rep.PerUser, func(i, j int) bool { return rep.PerUser[i].Index < rep.PerUser[j].Index })
	rep.summarise()
	if err := saveManifest(out, merged, manifest.TrainUsers, manifest.TestUsers, manifest.Interpolated); err != nil {
		return nil, err
	}
	if err := rep.write(out); err != nil {
		return nil, err
	}
	return rep, nil
}

// readParts reads the run information of the parts and checks that they
// are shards of one run, each once, none missing.
func readParts(dirs []string) ([]*part, error) {
	parts := make([]*part, len(dirs))
	seen := map[int]string{}
	for i, d := range dirs {
		ri, err := readRunInfo(d)
		if err != nil {
			return nil, fmt.Errorf("synth merge: part %s: %w", d, err)
		}
		if i > 0 {
			if f := firstDiff(parts[0].info, ri, map[string]bool{"shard": true}); f != "" {
				return nil, fmt.Errorf("synth merge: part %s differs from %s: %s", d, dirs[0], f)
			}
		}
		if prev, dup := seen[ri.Shard]; dup {
			return nil, fmt.Errorf("synth merge: parts %s and %s are both shard %d/%d (overlap)", prev, d, ri.Shard, ri.Shards)
		}
		seen[ri.Shard] = d
		parts[i] = &part{dir: d, info: ri}
	}
	if n := parts[0].info.Shards; len(seen) != n {
		var missing []int
		for s := 0; s < n; s++ {
			if _, ok := seen[s]; !ok {
				missing = append(missing, s)
			}
		}
		return nil, fmt.Errorf("synth merge: shards %v of %d are missing", missing, n)
	}
	return parts, nil
}

// sameSplit reads the parts' manifests and checks that they split the users
// alike; it returns the last one.
func sameSplit(parts []*part) (dataset.Manifest, error) {
	var manifest dataset.Manifest
	for i, p := range parts {
		m, err := dataset.ReadManifest(p.dir)
		if err != nil {
			return manifest, fmt.Errorf("synth merge: part %s (is it finished?): %w", p.dir, err)
		}
		if i > 0 && (!slices.Equal(m.TrainUsers, manifest.TrainUsers) || !slices.Equal(m.TestUsers, manifest.TestUsers) || !slices.Equal(m.Interpolated, manifest.Interpolated)) {
			return manifest, fmt.Errorf("synth merge: part %s: user split differs from %s's (the parts saw different personas)", p.dir, parts[0].dir)
		}
		manifest = m
	}
	return manifest, nil
}

// mergeRecords writes the parts' records to w in user order, skipping those
// w already has (a resumed merge); it returns how many it wrote.
func mergeRecords(ctx context.Context, parts []*part, w *dataset.Writer) (int, error) {
	written := 0
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		var best *part
		for _, p := range parts {
			if p.head == nil {
				continue
			}
			if best != nil && p.idx == best.idx {
				return written, fmt.Errorf("synth merge: user index %d is in both %s and %s (overlap)", p.idx, best.dir, p.dir)
			}
			if best == nil || p.idx < best.idx {
				best = p
			}
		}
		if best == nil {
			break
		}
		var batch []dataset.Record
		for cur := best.idx; best.head != nil && best.idx == cur; {
			if !w.Has(best.head.ID) {
				batch = append(batch, *best.head)
			}
			if err := best.next(); err != nil {
				return written, fmt.Errorf("synth merge: %w", err)
			}
		}
		if len(batch) > 0 {
			if err := w.WriteBatch(batch); err != nil {
				return written, fmt.Errorf("synth merge: %w", err)
			}
		}
		written += len(batch)
	}
	return written, nil
}

func readReport(dir string) (*Report, error) {
	data, err := os.ReadFile(partPath(dir, "report.json"))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read report %s: %w", partPath(dir, "report.json"), err)
	}
	return &r, nil
}

// add folds a part's report into a merged one.
func (r *Report) add(o *Report) {
	r.Users += o.Users
	r.Records += o.Records
	r.PerUser = append(r.PerUser, o.PerUser...)
	if o.Questions > r.Questions {
		r.Questions = o.Questions
	}
	if o.Similarity.Questions > r.Similarity.Questions {
		r.Similarity = o.Similarity
	}
	c := &r.Calls
	if c.Stages == nil {
		c.Stages = map[string]StageCount{}
	}
	for k, s := range o.Calls.Stages {
		t := c.Stages[k]
		t.add(s)
		c.Stages[k] = t
	}
	c.Calls += o.Calls.Calls
	c.Cached += o.Calls.Cached
	c.Usage.Add(o.Calls.Usage)
	c.FailedCalls += o.Calls.FailedCalls
	c.Failures = append(c.Failures, o.Calls.Failures...)
	c.Skipped = append(c.Skipped, o.Calls.Skipped...)
}
