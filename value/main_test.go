package value_test

import (
	"testing"

	"github.com/xproc-go/xproc/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }
