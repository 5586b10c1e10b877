package xproc_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readFile returns the repository file at path (relative to the module
// root, where root tests run).
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestGoVersionAgrees checks that the README claims the Go version go.mod
// requires, and that CI tests with exactly that version: a claim nobody
// tests drifts.
func TestGoVersionAgrees(t *testing.T) {
	mod := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`).FindStringSubmatch(readFile(t, "go.mod"))
	require.NotNil(t, mod, "go.mod has no go directive")
	claimed := mod[1]

	readme := regexp.MustCompile(`Go (\d+\.\d+) or later`).FindAllStringSubmatch(readFile(t, "README.md"), -1)
	require.NotEmpty(t, readme, `README says nothing like "Go 1.N or later"`)
	for _, m := range readme {
		require.Equal(t, claimed, m[1], "README claims Go %s, go.mod requires %s", m[1], claimed)
	}

	// CI reads the version from go.mod and runs the tests with it.
	ci := readFile(t, ".ci/run")
	require.Contains(t, ci, `lowest=$(awk '/^go /{print $2}' go.mod)`)
	require.Regexp(t, `GOTOOLCHAIN="go\$lowest" go test`, ci)
	require.False(t, strings.Contains(readFile(t, "go.mod"), "\ntoolchain "), "a toolchain line would make CI test another version")
}

// tableRow is one row of a Python-to-Go table: where it is, and the Go
// side's text.
type tableRow struct{ where, python, goSide string }

// pythonTables returns the rows of the README's "From Python" table and
// of the package documentation's (doc.go).
func pythonTables(t *testing.T) []tableRow {
	var rows []tableRow
	readme := readFile(t, "README.md")
	section := readme[strings.Index(readme, "## From Python"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	code := regexp.MustCompile("`([^`]*)`")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) != 2 || strings.HasPrefix(line, "| ---") || strings.Contains(line, "xproc |") {
			continue
		}
		var goSide []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			goSide = append(goSide, m[1])
		}
		rows = append(rows, tableRow{"README.md", strings.TrimPrefix(cells[0], "| "), strings.Join(goSide, " ")})
	}

	doc := readFile(t, "doc.go")
	lines := strings.Split(doc, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "//\tPython ") })
	require.GreaterOrEqual(t, start, 0, "doc.go has no Python table")
	col := strings.Index(lines[start], "Go (xproc)")
	for _, line := range lines[start+2:] {
		if !strings.HasPrefix(line, "//\t") {
			break
		}
		require.Greater(t, len(line), col, "doc.go row too short: %q", line)
		rows = append(rows, tableRow{"doc.go", strings.TrimSpace(line[3:col]), line[col:]})
	}
	return rows
}

// exampleUses returns, for each runnable Example (one with an Output
// comment) of the module's packages, the names it uses (see collect),
// its own and those of the package-level variables it names.
func exampleUses(t *testing.T) map[string]map[string]bool {
	uses := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, dir := range []string{".", "sync", "value", "array", "shm", "queue", "pipe", "process", "pool"} {
		paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		require.NoError(t, err)
		var files []*ast.File
		for _, p := range paths {
			f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
			require.NoError(t, err)
			files = append(files, f)
		}
		// The package-level variables of the test files: a function an
		// example runs in a worker is registered as one, and its body
		// belongs to the example.
		vars := map[string]ast.Node{}
		for _, f := range files {
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, spec := range g.Specs {
						for _, id := range spec.(*ast.ValueSpec).Names {
							if id.Name != "_" {
								vars[id.Name] = spec
							}
						}
					}
				}
			}
		}
		for _, ex := range doc.Examples(files...) {
			if ex.Output == "" && !ex.EmptyOutput {
				continue // compiled, not run: proves nothing
			}
			names := map[string]bool{}
			collect(ex.Code, names)
			local := declared(ex.Code)
			for name := range maps.Clone(names) {
				if spec, ok := vars[name]; ok && !local[name] {
					collect(spec, names)
				}
			}
			uses[dir+": Example"+ex.Name] = names
		}
	}
	return uses
}

// declared returns the names n declares (:=, var), which shadow the
// package's.
func declared(n ast.Node) map[string]bool {
	names := map[string]bool{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						names[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			for _, id := range n.Names {
				names[id.Name] = true
			}
		}
		return true
	})
	return names
}

// collect adds the names used in n to names: "Lock" for v.Lock(), and
// also "xsync.Mutex" for a name qualified by a package.
func collect(n ast.Node, names map[string]bool) {
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			names[n.Name] = true
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok {
				names[x.Name+"."+n.Sel.Name] = true
			}
		}
		return true
	})
}

// TestPythonTablesHaveExamples: every row of the Python-to-Go tables is
// a runnable example: one Example with an Output comment uses every Go
// name the row gives (qualified by its package where the row qualifies
// it).
func TestPythonTablesHaveExamples(t *testing.T) {
	uses := exampleUses(t)
	names := regexp.MustCompile(`(?:\b([a-z]\w*)\.)?\b([A-Z]\w+)`)
	packages := map[string]bool{"xsync": true, "value": true, "array": true, "shm": true, "context": true,
		"queue": true, "pipe": true, "process": true, "pool": true, "io": true}
	rows := pythonTables(t)
	require.Greater(t, len(rows), 25, "both tables were read")
	for _, row := range rows {
		var want []string
		for _, m := range names.FindAllStringSubmatch(row.goSide, -1) {
			if packages[m[1]] {
				want = append(want, m[1]+"."+m[2])
			} else {
				want = append(want, m[2])
			}
		}
		require.NotEmpty(t, want, "%s: row %q names nothing in Go", row.where, row.python)
		var covering []string
		for ex, used := range uses {
			if !slices.ContainsFunc(want, func(n string) bool { return !used[n] }) {
				covering = append(covering, ex)
			}
		}
		assert.NotEmpty(t, covering, "%s: no runnable example uses all of %v (row %q)", row.where, want, row.python)
	}
}

// TestREADMEExample: the README's example is the program in
// examples/workers, line for line, and that program is vet-clean (no
// lock copied) and runs.
func TestREADMEExample(t *testing.T) {
	readme := readFile(t, "README.md")
	section := readme[strings.Index(readme, "## Example"):]
	snippet := section[strings.Index(section, "```go\n")+6:]
	snippet = snippet[:strings.Index(snippet, "```")]
	program := readFile(t, "examples/workers/main.go")
	var programLines []string
	for _, l := range strings.Split(program, "\n") {
		programLines = append(programLines, strings.TrimSpace(l))
	}
	for _, l := range strings.Split(snippet, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue // prose
		}
		found := slices.ContainsFunc(programLines, func(p string) bool { return strings.Contains(p, l) })
		assert.True(t, found, "README line %q is not in examples/workers/main.go", l)
	}

	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to vet and run the example with")
	}
	out, err := exec.Command(gotool, "vet", "./examples/workers").CombinedOutput()
	require.NoError(t, err, "go vet ./examples/workers:\n%s", out)

	exe := filepath.Join(t.TempDir(), "workers")
	out, err = exec.Command(gotool, "build", "-o", exe, "./examples/workers").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(exe).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "count: 40000\n", string(out))
}

// TestPoolExample runs examples/pool: a pool maps squares, and normalises
// an array its workers open by name.
func TestPoolExample(t *testing.T) {
	out, err := exec.Command("go", "run", "./examples/pool").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "squares: [0 1 4 9 16 25 36 49 64 81]")
	assert.Contains(t, string(out), "the first span now has length 1.000")
}
