//go:build race

package value_test

// increments is how many times each of two processes increments a shared
// counter in the counting tests. Under -race every lock operation costs
// about a microsecond (the detector's bookkeeping for xsync.Mutex), and
// two processes handing the lock back and forth took 2 to 9 seconds for
// the full 1M, so the count is scaled down; the 1M runs without
// -race.
const increments = 200_000
