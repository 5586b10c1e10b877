package pipe_test

import (
	"context"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

var bg = context.Background()

func timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(bg, d)
}
