package app

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/weir-dev/weir/"

// TestImportRules keeps wiring in one place: the core packages never import
// concrete components or the app layer, and components never import the app
// or the CLI.
func TestImportRules(t *testing.T) {
	root := filepath.Join("..", "..")
	core := []string{"internal/runtime", "internal/dag", "internal/expr", "internal/jsondoc", "internal/event", "internal/config"}
	forbiddenForCore := []string{"internal/connector", "internal/processor", "internal/app", "internal/cli", "internal/control"}
	components := []string{"internal/connector", "internal/processor"}
	forbiddenForComponents := []string{"internal/app", "internal/cli"}

	checked := 0
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(ip, module) {
				continue
			}
			target := strings.TrimPrefix(ip, module)
			if hasPrefix(pkg, core) && hasPrefix(target, forbiddenForCore) {
				t.Errorf("%s imports %s: core packages must not import components or wiring", rel, target)
			}
			if hasPrefix(pkg, components) && hasPrefix(target, forbiddenForComponents) {
				t.Errorf("%s imports %s: components must not import the app or the CLI", rel, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the walk rooted right?", checked)
	}
}

func hasPrefix(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
