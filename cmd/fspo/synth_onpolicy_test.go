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
	args := []string{"synth", "onpolicy", "--data", data, "--policy", run, "--out", out, "--samples", "3", "--passes", "1", "--min-margin", "0.1", "--seed", "3"}
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
