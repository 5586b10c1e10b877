//go:build !amd64 && !arm64

package spin

var sink uint32

// pause burns a little time on processors without a hint instruction we use.
func pause(n uint32) {
	for i := uint32(0); i < n; i++ {
		sink += i
	}
}
