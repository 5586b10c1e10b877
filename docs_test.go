package xproc_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

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
