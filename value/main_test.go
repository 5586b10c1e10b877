package value_test

import (
	"strconv"
	"testing"

	"github.com/xproc-go/xproc/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
