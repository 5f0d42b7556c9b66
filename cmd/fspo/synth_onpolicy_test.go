package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/onpolicy"
	"fspo/synth/stories"
)

// TestSynthOnpolicy: a trained run's own answers to its training users'
// questions become pairs labelled by the users' exact rewards, in a new
// data folder that holds the old records too, verifies against its
// manifest and trains a next stage; a rerun changes nothing.
func TestSynthOnpolicy(t *testing.T) {
	data := evalData(t)
	p := sharedModel(t)
	dir := t.TempDir()
	run := filepath.Join(dir, "prefft")
	if _, stderr, err := runCLI(t, "train", "--data", data, "--out", run, "--init", p.Checkpoint, "--stage", "sft", "--steps", "2", "--batch", "2", "--heldout", "0"); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	out := filepath.Join(dir, "online")
	args := []string{"synth", "onpolicy", "--data", data, "--policy", run, "--out", out, "--samples", "3", "--passes", "2", "--min-margin", "0.1", "--seed", "3"}
	stdout, stderr, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("synth onpolicy: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "on-policy pairs") || !strings.Contains(stderr, "onpolicy users") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	man, err := dataset.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := man.Verify(out); err != nil {
		t.Fatal(err)
	}
	old, _ := dataset.ReadAll(filepath.Join(data, dataset.FileName))
	all, err := dataset.ReadAll(filepath.Join(out, dataset.FileName))
	if err != nil {
		t.Fatal(err)
	}
	users, err := stories.LoadUsers(out)
	if err != nil {
		t.Fatal(err)
	}
	train := map[string]bool{}
	for _, u := range man.TrainUsers {
		train[u] = true
	}
	added := all[len(old):]
	if len(added) == 0 || man.Notes["onpolicy"] == "" {
		t.Fatalf("%d records after the data's %d; notes %v", len(all), len(old), man.Notes)
	}
	for i, r := range all[:len(old)] {
		if r.Key() != old[i].Key() {
			t.Fatalf("record %d: %s, the data's %s", i, r.Key(), old[i].Key())
		}
	}
	for _, r := range added {
		u, _ := users.User(r.User)
		c, j := u.Reward(r.Chosen), u.Reward(r.Rejected)
		if r.Source != onpolicy.Source || !train[r.User] || c-j < 0.1 || c != *r.ChosenScore || j != *r.RejectedScore {
			t.Errorf("pair %s of %s: rewards %v / %v, scores %v / %v", r.ID, r.User, c, j, *r.ChosenScore, *r.RejectedScore)
		}
	}
	before, _ := os.ReadFile(filepath.Join(out, dataset.FileName))
	if _, stderr, err := runCLI(t, args...); err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(out, dataset.FileName))
	if !bytes.Equal(before, after) {
		t.Errorf("a rerun changed %s", dataset.FileName)
	}
	// Interrupted with the last user's pairs half written: the rerun writes
	// the rest, and the folder is the uninterrupted run's.
	checkOnpolicyResume(t, out, args, before)
	checkOnpolicyRounds(t, dir, data, out, run, p.Checkpoint)
	next := filepath.Join(dir, "next")
	if _, stderr, err := runCLI(t, "train", "--data", out, "--out", next, "--init", filepath.Join(run, "model.fspo"), "--stage", "pref", "--steps", "2", "--batch", "2", "--heldout", "0"); err != nil {
		t.Fatalf("pref stage on the on-policy data: %v\n%s", err, stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", data, "--policy", run, "--out", data}, "a new folder"},
		{[]string{"--data", data, "--policy", p.Checkpoint, "--out", filepath.Join(dir, "x")}, "no run card"},
		{[]string{"--data", data, "--policy", run, "--out", filepath.Join(dir, "y"), "--samples", "1"}, "at least 2 answers"},
		{[]string{"--policy", run, "--out", filepath.Join(dir, "z")}, "--data, --policy and --out are required"},
	} {
		if _, _, err := runCLI(t, append([]string{"synth", "onpolicy"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// checkOnpolicyResume cuts the partial file in the middle of one user's
// pairs (an interrupted write), removes the finished folder's data file and manifest,
// reruns args and wants want as the data file again.
func checkOnpolicyResume(t *testing.T, out string, args []string, want []byte) {
	t.Helper()
	partial := filepath.Join(out, onpolicyPartial)
	recs, err := dataset.ReadAll(partial)
	if err != nil {
		t.Fatal(err)
	}
	// the user with the most pairs is cut in the middle, the users after it dropped
	first, n := 0, 0
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].User == recs[i].User {
			j++
		}
		if j-i > n {
			first, n = i, j-i
		}
		i = j
	}
	if n < 2 {
		t.Fatalf("no user has two pairs to cut between (%d pairs)", len(recs))
	}
	last, keep := recs[first].User, first+n/2
	raw, _ := os.ReadFile(partial)
	lines := bytes.SplitAfter(raw, []byte("\n"))
	if err := os.WriteFile(partial, bytes.Join(lines[:keep], nil), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dataset.FileName, dataset.ManifestName} {
		if err := os.Remove(filepath.Join(out, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, err := runCLI(t, args...); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(out, dataset.FileName))
	if !bytes.Equal(got, want) {
		t.Errorf("after an interrupted run (%d of %d pairs kept, the last user %s cut at %d), %s differs from the uninterrupted run's", keep, len(recs), last, keep-first, dataset.FileName)
	}
}

// checkOnpolicyRounds: a folder begun with one policy refuses another, and a
// second round over a first round's folder keeps the first's pairs as data
// and its own in its partial file.
func checkOnpolicyRounds(t *testing.T, dir, data, out, run, base string) {
	t.Helper()
	other := filepath.Join(dir, "other")
	if _, stderr, err := runCLI(t, "train", "--data", data, "--out", other, "--init", base, "--stage", "sft", "--steps", "2", "--batch", "2", "--heldout", "0", "--seed", "9"); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	_, _, err := runCLI(t, "synth", "onpolicy", "--data", data, "--policy", other, "--out", out, "--passes", "1")
	if err == nil || !strings.Contains(err.Error(), "holds the answers of another policy") {
		t.Errorf("another policy into %s: error %v", out, err)
	}
	second := filepath.Join(dir, "second")
	if _, stderr, err := runCLI(t, "synth", "onpolicy", "--data", out, "--policy", other, "--out", second, "--passes", "1", "--min-margin", "0"); err != nil {
		t.Fatalf("second round: %v\n%s", err, stderr)
	}
	first, _ := dataset.ReadAll(filepath.Join(out, dataset.FileName))
	mine, _ := dataset.ReadAll(filepath.Join(second, onpolicyPartial))
	all, err := dataset.ReadAll(filepath.Join(second, dataset.FileName))
	if err != nil || len(mine) == 0 || len(all) != len(first)+len(mine) {
		t.Errorf("second round: %d records (%v), want the first round's %d and its own %d", len(all), err, len(first), len(mine))
	}
}
