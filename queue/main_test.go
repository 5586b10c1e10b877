package queue_test

import (
	"context"
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
