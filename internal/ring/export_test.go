package ring

import "github.com/xproc-go/xproc/internal/owner"

// ForgeState stores w in the state word of the record at pos: what a
// process that died holding the record leaves.
func (r *Ring) ForgeState(pos uint64, w uint64) { r.state(pos).Store(w) }

// Writing and Leased are the state words of records held by id.
func Writing(id owner.ID) uint64 { return uint64(id) }
func Leased(id owner.ID) uint64  { return leased(id) }

// Buf returns the record bytes, for corruption tests.
func (r *Ring) Buf() []byte { return r.buf }
