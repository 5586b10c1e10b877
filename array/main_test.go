package array_test

import (
	"testing"

	"github.com/xproc-go/xproc/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// increments is how many times each of two processes adds to a shared
// element in the counting tests: the 1M (fast enough under -race
// too, since atomics are not slowed much by it).
const increments = 1_000_000
