package owner

// ParseStat exposes parseStat to the external tests (which cannot be in
// package owner: they import testproc, which imports shm, which imports
// owner).
var ParseStat = parseStat

// Internals for the external tests.
var (
	MakeTagged = makeTagged
	ParseNS    = parseNS
	NSTag      = nsTag
	SelfTag    = func() uint8 { return selfTag }
)
