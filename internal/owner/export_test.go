package owner

// ParseStat exposes parseStat to the external tests (which cannot be in
// package owner: they import testproc, which imports shm, which imports
// owner).
var ParseStat = parseStat
