package process_test

import (
	"testing"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/process"
)

func TestMain(m *testing.M) {
	process.Init()
	testproc.Main(m)
}
