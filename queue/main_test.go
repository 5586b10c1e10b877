package queue_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/queue"
)

func TestMain(m *testing.M) { testproc.Main(m) }

var bg = context.Background()

// create makes a queue for the test, unlinked and closed when it ends.
func create(t testing.TB, o queue.Options) (string, *queue.Queue) {
	t.Helper()
	name := testproc.Name(t)
	q, err := queue.Create(name, o)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return name, q
}

func timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(bg, d)
}

// within runs f and fails unless it returns within d: generous bounds on
// promptness, never ordering.
func within(t *testing.T, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	took := time.Since(start)
	if took > d {
		t.Fatalf("%s took %v (bound %v)", what, took, d)
	}
	return took
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
