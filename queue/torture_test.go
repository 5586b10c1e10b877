package queue_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/internal/torture"
)

func init() {
	testproc.Register(torture.RoleProducer, torture.Producer)
	testproc.Register(torture.RoleConsumer, torture.Consumer)
}

type child struct{ c *testproc.Child }

func (c child) Kill()       { c.c.Stop() }
func (c child) Wait() error { return c.c.Exit() }

// TestTorture kills producers and consumers with SIGKILL at random points
// while the others run, 200 times, and checks that no call hung and no
// message was torn, handed to two consumers, or lost ("xproc torture
// queue" runs the same for longer).
func TestTorture(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 50
	}
	res, err := torture.Run(torture.Config{
		Name: testproc.Name(t), Cycles: cycles, Producers: 2, Consumers: 2,
		MaxDelay: 10 * time.Millisecond, Stall: 30 * time.Second, Seed: uint64(time.Now().UnixNano()),
	}, func(role string, args ...string) (torture.Proc, error) {
		return child{testproc.Start(t, role, args...)}, nil
	})
	require.NoError(t, err)
	t.Log(res)
	assert.True(t, res.OK(), "%v", res)
	assert.Equal(t, cycles, res.Cycles)
	assert.Positive(t, res.Messages)
}
