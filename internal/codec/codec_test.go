package codec_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/codec"
)

type point struct {
	X, Y float64
	N    int32
}

type named struct {
	Name string
	Tags map[string]int
}

func TestRawAndCoded(t *testing.T) {
	assert.True(t, codec.For[int64](nil).Raw())
	assert.True(t, codec.For[point](nil).Raw())
	assert.False(t, codec.For[string](nil).Raw())
	assert.False(t, codec.For[named](nil).Raw())

	ps := []point{{1, 2, 3}, {-1, 0.5, 7}}
	b, err := codec.For[point](nil).AppendSlice([]byte("hdr"), ps)
	require.NoError(t, err)
	assert.Len(t, b, 3+2*24, "raw: the values' bytes after the prefix")
	got, err := codec.For[point](nil).DecodeSlice(b[3:], 2)
	require.NoError(t, err)
	assert.Equal(t, ps, got)
	_, err = codec.For[point](nil).DecodeSlice(b[3:10], 2)
	assert.Error(t, err, "wrong length")
	empty, err := codec.For[point](nil).DecodeSlice(nil, 0)
	require.NoError(t, err)
	assert.Empty(t, empty)

	ns := []named{{"a", map[string]int{"x": 1}}, {"b", nil}}
	for _, c := range []codec.Codec{nil, codec.Gob, codec.JSON} {
		o := codec.For[named](c)
		b, err := o.AppendSlice(nil, ns)
		require.NoError(t, err)
		got, err := o.DecodeSlice(b, 2)
		require.NoError(t, err)
		assert.Equal(t, ns[0], got[0])
		assert.Equal(t, "b", got[1].Name)
		_, err = o.DecodeSlice(b, 3)
		assert.Error(t, err, "wrong count")
		_, err = o.DecodeSlice([]byte("garbage"), 2)
		assert.Error(t, err)
	}
	_, err = codec.For[func()](nil).AppendSlice(nil, []func(){func() {}})
	assert.Error(t, err, "gob cannot encode a function")
}
