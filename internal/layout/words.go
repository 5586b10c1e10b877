package layout

import "strings"

// Words for messages, so that they read as English: "holds an array",
// "field F is an interface".

// WithArticle returns word preceded by "a" or "an", chosen by its first
// letter (a vowel takes "an"). It suits the words this module puts in
// messages (Go kinds, "interface", "unsafe.Pointer"), not English at large.
func WithArticle(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

var kindNouns = [...]string{
	KindRaw: "a raw segment", KindMutex: "a mutex", KindReentrantMutex: "a reentrant mutex",
	KindSemaphore: "a semaphore", KindEvent: "an event", KindCond: "a condition variable",
	KindBarrier: "a barrier", KindValue: "a value", KindArray: "an array",
	KindQueue: "a queue", KindPipe: "a pipe",
}

// KindNoun returns a noun phrase with its article for what a segment of
// kind k holds ("an array", "a reentrant mutex"), or "kind(N)" for a
// number no kind has.
func KindNoun(k Kind) string {
	if k >= 1 && k <= maxKind {
		return kindNouns[k]
	}
	return k.String()
}
