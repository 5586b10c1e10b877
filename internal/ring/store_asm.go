//go:build amd64 || arm64

package ring

// storeRelease stores v at p with release ordering: every memory access
// before it in program order is visible to a process that loads v from p
// (with an atomic load) before anything it does after that load. It is
// sync/atomic's Store without the full barrier that Store pays on amd64
// (an XCHG, about 20 cycles), as the Go runtime's own StoreRel64.
//
//go:noescape
func storeRelease(p *uint64, v uint64)
