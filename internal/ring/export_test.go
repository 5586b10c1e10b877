package ring

import (
	"sync/atomic"
	"unsafe"

	"github.com/xproc-go/xproc/internal/owner"
)

// ForgeState stores w in the state word of the record at pos: what a
// process that died holding the record leaves.
func (r *Ring) ForgeState(pos uint64, w uint64) { r.state(pos).Store(w) }

// Writing and Leased are the state words of records held by id.
func Writing(id owner.ID) uint64 { return uint64(id) }
func Leased(id owner.ID) uint64  { return leased(id) }

// Buf returns the record bytes, for corruption tests.
func (r *Ring) Buf() []byte { return r.buf }

// ForgeDeadHolder leaves the producers' lock as a producer killed inside
// it leaves it: held by id, after moving the tail over its record but
// before counting it in Put.
func (r *Ring) ForgeDeadHolder(id owner.ID) {
	(*atomic.Uint64)(unsafe.Pointer(&r.c.Lock)).Store(uint64(id))
	r.c.Put.Add(^uint64(0))
}
