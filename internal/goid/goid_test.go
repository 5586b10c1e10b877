package goid_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/internal/goid"
)

func TestGet(t *testing.T) {
	me := goid.Get()
	assert.NotZero(t, me)
	assert.Equal(t, me, goid.Get(), "stable within a goroutine")
	ids := make(chan uint64)
	for range 10 {
		go func() { ids <- goid.Get() }()
	}
	seen := map[uint64]bool{me: true}
	for range 10 {
		id := <-ids
		assert.False(t, seen[id], "goroutine id %d seen twice", id)
		seen[id] = true
	}
}
