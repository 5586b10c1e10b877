package process

// DisablePdeathsig starts the workers this process starts from now on
// without the parent-death signal, so that only the lifeline can stop
// them when this process dies. For test children, which it never
// restores.
func DisablePdeathsig() { pdeathsig = 0 }

// ExitOrphan is the exit status of a worker whose parent died.
const ExitOrphan = exitOrphan
