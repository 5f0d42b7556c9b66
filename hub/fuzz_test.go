package hub

import (
	"strings"
	"testing"
)

// FuzzParseInfo feeds arbitrary revision-API answers: an error or files whose
// names stay inside the snapshot and whose hashes can name a blob.
func FuzzParseInfo(f *testing.F) {
	f.Add([]byte(`{"sha":"` + commitA + `","siblings":[{"rfilename":"config.json","size":2,"blobId":"` + commitB + `"},` +
		`{"rfilename":"model.safetensors","size":9,"blobId":"` + commitB + `","lfs":{"size":9,"sha256":"` + strings.Repeat("c", 64) + `","pointerSize":134}}]}`))
	f.Add([]byte(`{"sha":"` + commitA + `","siblings":[{"rfilename":"../x","size":1,"blobId":"` + commitB + `"}]}`))
	f.Add([]byte(`{"sha":"main"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		commit, files, err := parseInfo(data)
		if err != nil {
			return
		}
		if !commitHash.MatchString(commit) {
			t.Fatalf("accepted commit %q", commit)
		}
		for n, file := range files {
			if !safeName(n) || n != file.Name || file.Size < 0 {
				t.Fatalf("accepted file %+v", file)
			}
			if (file.LFS && !sha256Hex.MatchString(file.Hash)) || (!file.LFS && !commitHash.MatchString(file.Hash)) {
				t.Fatalf("accepted hash %q for %s", file.Hash, n)
			}
		}
	})
}

// FuzzParseIndex feeds arbitrary model.safetensors.index.json files.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":3},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"/etc/passwd"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Add([]byte(`{"weight_map":{"a":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		shards, err := parseIndex(data)
		if err != nil {
			return
		}
		if len(shards) == 0 {
			t.Fatal("no error and no shards")
		}
		for _, s := range shards {
			if !safeName(s) {
				t.Fatalf("accepted shard %q", s)
			}
		}
	})
}
