//go:build !race

package value_test

// increments is how many times each of two processes increments a shared
// counter in the counting tests: the 1M.
const increments = 1_000_000
