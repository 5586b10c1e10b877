package sync_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// createShared makes a raw segment holding a zero T for the test; children
// map it with openShared.
func createShared[T any](t testing.TB) (string, *T) {
	t.Helper()
	name := testproc.Name(t)
	ty, err := shm.TypeOf[T]()
	require.NoError(t, err)
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	require.NoError(t, err)
	t.Cleanup(func() { seg.Close() })
	p, err := shm.View[T](seg, 0)
	require.NoError(t, err)
	return name, p
}

// openShared maps the T of a segment made by createShared, in a child.
func openShared[T any](name string) (*T, error) {
	ty, err := shm.TypeOf[T]()
	if err != nil {
		return nil, err
	}
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return nil, err
	}
	// The child exits when its role returns; the mapping goes with it.
	return shm.View[T](seg, 0)
}

// eventually polls cond until it holds, failing the test after
// testproc.Bound. It observes state another process changes; it never
// stands in for synchronisation.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testproc.Bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, testproc.Bound)
		}
		time.Sleep(time.Millisecond)
	}
}

func timeoutCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func childErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

var _ = os.Getpid

var (
	shmErrKind        = shm.ErrKind
	shmErrExist       = shm.ErrExist
	shmErrNotExist    = shm.ErrNotExist
	shmErrInvalidName = shm.ErrInvalidName
)
