#include "textflag.h"

// func storeRelease(p *uint64, v uint64)
//
// A plain store is a release on amd64 (total store order); the call keeps
// the compiler from moving memory operations across it.
TEXT ·storeRelease(SB), NOSPLIT, $0-16
	MOVQ	p+0(FP), AX
	MOVQ	v+8(FP), BX
	MOVQ	BX, (AX)
	RET
