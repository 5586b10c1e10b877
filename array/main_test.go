package array_test

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

// increments is how many times each of two processes adds to a shared
// element in the counting tests: the 1M (fast enough under -race
// too, since atomics are not slowed much by it).
const increments = 1_000_000
