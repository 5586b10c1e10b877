//go:build !amd64 && !arm64

package ring

import "sync/atomic"

// storeRelease stores v at p with (at least) release ordering.
func storeRelease(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
