//go:build amd64 || arm64

package spin

// pause executes n (> 0) spin-wait hints.
func pause(n uint32)
