package pool

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/internal/registry"
)

// The messages between the parent and its workers, in two queues.
//
// A task message carries one batch of calls of one function:
//
//	offset  size  field
//	0       8     batch id (never 0)
//	8       8     call id (the Map, Imap or Apply the batch belongs to)
//	16      4     count: calls in the batch
//	20      2     length L of the function's registered name
//	22      L     the name, then zero padding to a multiple of 8
//	...           the arguments, codec.Of's slice encoding of count Ins
//
// A result message answers one batch, or a part of one (calls first to
// first+count-1 of it, when all its results do not fit one message), or
// says a worker is ready:
//
//	offset  size  field
//	0       8     batch id (for a ready message: the worker's token)
//	8       4     count: calls answered
//	12      4     pid of the worker that sends it
//	16      1     status (statusOK, ...)
//	17      3     zero
//	20      4     pid of the worker that died holding the batch (statusDied)
//	24      8     nanoseconds the worker spent running the batch
//	32      4     length F of the failures
//	36      4     first: the batch's call the answer starts at
//	40      F     the failures and a message (codec.Gob), if F > 0
//	...           the results, codec.Of's slice encoding of count Outs

const (
	taskHeader   = 22
	resultHeader = 40
)

// Result statuses.
const (
	statusOK        = iota // results, with failures for some calls
	statusDied             // not run: the worker holding it died, retries are spent
	statusCancelled        // not run: its call was cancelled
	statusFailed           // not run: the batch could not be decoded or encoded
	statusUnknown          // not run: its function is not registered in the worker
	statusReady            // a worker has started and is taking tasks
	statusTooLarge         // run, but its result does not fit a message
	statusMaxRSS           // cut short: its worker passed MaxRSS running it, and exits
)

var errWire = errors.New("pool: malformed message")

type task struct {
	batch, call uint64
	count       int
	fn          string
	args        []byte
}

func appendTask(dst []byte, t *task, args func([]byte) ([]byte, error)) ([]byte, error) {
	var h [taskHeader]byte
	binary.LittleEndian.PutUint64(h[0:], t.batch)
	binary.LittleEndian.PutUint64(h[8:], t.call)
	binary.LittleEndian.PutUint32(h[16:], uint32(t.count))
	binary.LittleEndian.PutUint16(h[20:], uint16(len(t.fn)))
	dst = append(dst, h[:]...)
	dst = append(dst, t.fn...)
	for len(dst)%8 != 0 {
		dst = append(dst, 0)
	}
	return args(dst)
}

func parseTask(b []byte) (task, error) {
	if len(b) < taskHeader {
		return task{}, errWire
	}
	t := task{
		batch: binary.LittleEndian.Uint64(b[0:]),
		call:  binary.LittleEndian.Uint64(b[8:]),
		count: int(binary.LittleEndian.Uint32(b[16:])),
	}
	l := int(binary.LittleEndian.Uint16(b[20:]))
	end := (taskHeader + l + 7) &^ 7
	if end > len(b) {
		return task{}, errWire
	}
	t.fn = string(b[taskHeader : taskHeader+l])
	t.args = b[end:]
	return t, nil
}

type result struct {
	batch   uint64
	first   int
	count   int
	pid     int
	status  byte
	deadPid int
	ns      int64
	fails   []registry.Failure
	message string
	payload []byte
	fresh   []bool // set by the parent: the calls not answered before; nil: all
}

// failures is what travels in a result's failure field.
type failures struct {
	Fails   []registry.Failure
	Message string
}

func appendResult(dst []byte, r *result) ([]byte, error) {
	var f []byte
	if len(r.fails) > 0 || r.message != "" {
		var err error
		if f, err = codec.Gob.Marshal(&failures{r.fails, r.message}); err != nil {
			return nil, err
		}
	}
	var h [resultHeader]byte
	binary.LittleEndian.PutUint64(h[0:], r.batch)
	binary.LittleEndian.PutUint32(h[8:], uint32(r.count))
	binary.LittleEndian.PutUint32(h[12:], uint32(r.pid))
	h[16] = r.status
	binary.LittleEndian.PutUint32(h[20:], uint32(r.deadPid))
	binary.LittleEndian.PutUint64(h[24:], uint64(r.ns))
	binary.LittleEndian.PutUint32(h[32:], uint32(len(f)))
	binary.LittleEndian.PutUint32(h[36:], uint32(r.first))
	dst = append(dst, h[:]...)
	dst = append(dst, f...)
	return append(dst, r.payload...), nil
}

// parseResult parses b, which the caller owns: the payload stays in it.
func parseResult(b []byte) (result, error) {
	if len(b) < resultHeader {
		return result{}, errWire
	}
	r := result{
		batch:   binary.LittleEndian.Uint64(b[0:]),
		count:   int(binary.LittleEndian.Uint32(b[8:])),
		pid:     int(binary.LittleEndian.Uint32(b[12:])),
		status:  b[16],
		deadPid: int(binary.LittleEndian.Uint32(b[20:])),
		ns:      int64(binary.LittleEndian.Uint64(b[24:])),
		first:   int(binary.LittleEndian.Uint32(b[36:])),
	}
	fl := int(binary.LittleEndian.Uint32(b[32:]))
	if fl > len(b)-resultHeader {
		return result{}, errWire
	}
	if fl > 0 {
		var f failures
		if err := codec.Gob.Unmarshal(b[resultHeader:resultHeader+fl], &f); err != nil {
			return result{}, fmt.Errorf("%w: failures: %v", errWire, err)
		}
		r.fails, r.message = f.Fails, f.Message
	}
	r.payload = b[resultHeader+fl:]
	return r, nil
}

// Limits on what a failure carries, so that the failures of a batch fit
// a message with its results.
const (
	maxFailMessage = 4 << 10
	maxFailStack   = 16 << 10
)

// trimFailures shortens long messages and stacks.
func trimFailures(fs []registry.Failure) []registry.Failure {
	for i := range fs {
		fs[i].Message = trim(fs[i].Message, maxFailMessage)
		fs[i].Stack = trim(fs[i].Stack, maxFailStack)
	}
	return fs
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "... (cut)"
}
