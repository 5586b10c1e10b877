//go:build !linux

package owner

import "context"

// ExitContext reports ok false: this system has no way to be told of
// another process's exit; callers check at intervals instead.
func ExitContext(id ID) (ctx context.Context, release func(), ok bool) {
	return nil, nil, false
}
