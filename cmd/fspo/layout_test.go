package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeLayout: the README's Layout section states, for every package
// but cmd/fspo and the test-only ones, exactly the fspo packages it imports
// (read from the sources with go/parser, test files excluded).
func TestReadmeLayout(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	stated, testOnly := layoutSection(t, string(readme))
	actual := importGraph(t, root)
	for pkg, deps := range actual {
		if pkg == "cmd/fspo" || slices.Contains(testOnly, pkg) {
			continue
		}
		got, ok := stated[pkg]
		if !ok {
			t.Errorf("README Layout: package %s (imports %v) is not listed", pkg, deps)
			continue
		}
		if !slices.Equal(got, deps) {
			t.Errorf("README Layout: %s → %v, but it imports %v", pkg, got, deps)
		}
	}
	for pkg := range stated {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("README Layout lists %s, which is not a package", pkg)
		}
	}
	for _, pkg := range testOnly {
		if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
			t.Errorf("README Layout lists %s as test-only: %v", pkg, err)
		}
	}
}

var (
	backticked    = regexp.MustCompile("`([a-z0-9/]+)`")
	parenthetical = regexp.MustCompile(`\([^()]*\)`)
)

// layoutSection reads the Layout section's bullets: "no fspo imports: `a`,
// `b`" and clauses "`a`, `b` → `c`, `d`" separated by semicolons; the
// test-only bullet names packages and programs whose imports are not stated.
func layoutSection(t *testing.T, readme string) (map[string][]string, []string) {
	t.Helper()
	i := strings.Index(readme, "## Layout")
	if i < 0 {
		t.Fatal("README has no Layout section")
	}
	sec := readme[i:]
	if j := strings.Index(sec[3:], "\n## "); j >= 0 {
		sec = sec[:j+3]
	}
	stated := map[string][]string{}
	var testOnly []string
	for _, item := range strings.Split(sec, "\n- ")[1:] {
		item, _, _ = strings.Cut(item, "\n\n")
		item = parenthetical.ReplaceAllString(strings.Join(strings.Fields(item), " "), "")
		names := func(s string) []string {
			var out []string
			for _, m := range backticked.FindAllStringSubmatch(s, -1) {
				out = append(out, m[1])
			}
			return out
		}
		switch {
		case strings.HasPrefix(item, "no fspo imports:"):
			for _, p := range names(item) {
				stated[p] = nil
			}
		case strings.HasPrefix(item, "test-only:"):
			testOnly = names(item)
		case strings.HasPrefix(item, "`cmd/fspo`"):
		default:
			for _, clause := range strings.Split(item, ";") {
				if strings.TrimSpace(clause) == "" {
					continue
				}
				from, to, ok := strings.Cut(clause, "→")
				if !ok {
					t.Fatalf("README Layout: clause %q has no →", clause)
				}
				deps := names(to)
				slices.Sort(deps)
				for _, p := range names(from) {
					stated[p] = deps
				}
			}
		}
	}
	return stated, testOnly
}

// importGraph maps every package under root (by its path below the module)
// to the sorted fspo packages its non-test files import.
func importGraph(t *testing.T, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "llamacpp") {
			return filepath.SkipDir // llamacpp: a module of its own
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		deps := graph[pkg]
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if dep, ok := strings.CutPrefix(p, "fspo/"); ok && !slices.Contains(deps, dep) {
				deps = append(deps, dep)
			}
		}
		slices.Sort(deps)
		graph[pkg] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}
