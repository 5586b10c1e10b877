package layout_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/internal/layout"
	xsync "github.com/xproc-go/xproc/sync"
)

// TestTypeName: names are Go syntax as a user of the module writes it.
func TestTypeName(t *testing.T) {
	type job struct {
		Mu xsync.Mutex
		N  int64
	}
	for ty, want := range map[reflect.Type]string{
		reflect.TypeFor[int64]():                    "int64",
		reflect.TypeFor[[4]float32]():               "[4]float32",
		reflect.TypeFor[xsync.Mutex]():              "xsync.Mutex",
		reflect.TypeFor[xsync.ReentrantMutex]():     "xsync.ReentrantMutex",
		reflect.TypeFor[[2]xsync.Semaphore]():       "[2]xsync.Semaphore",
		reflect.TypeFor[job]():                      "layout_test.job",
		reflect.TypeFor[point]():                    "layout_test.point",
		reflect.TypeFor[struct{}]():                 "struct {}",
		reflect.TypeFor[struct{ Mu xsync.Mutex }](): "struct { Mu xsync.Mutex }",
		reflect.TypeFor[struct {
			xsync.Event
			N [3]int8
		}](): "struct { xsync.Event; N [3]int8 }",
	} {
		assert.Equal(t, want, layout.TypeName(ty))
		d, err := layout.Describe(ty)
		if err == nil {
			assert.Equal(t, want, d.Name, "Describe records it")
		}
	}
	// A named condition's segment holds an unexported pair, named by
	// what is in it (see sync's TestNamedTypeNames).
}

func TestKindNoun(t *testing.T) {
	assert.Equal(t, "an array", layout.KindNoun(layout.KindArray))
	assert.Equal(t, "a reentrant mutex", layout.KindNoun(layout.KindReentrantMutex))
	assert.Equal(t, "an event", layout.KindNoun(layout.KindEvent))
	assert.Equal(t, "kind(99)", layout.KindNoun(99))
	assert.Equal(t, "an interface", layout.WithArticle("interface"))
	assert.Equal(t, "a map", layout.WithArticle("map"))
}
