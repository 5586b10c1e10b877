package layout

import (
	"go/token"
	"reflect"
	"strconv"
	"strings"
)

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

// syncPath is the import path of the module's sync package, which users
// import as xsync.
const syncPath = modulePath + "sync"

// TypeName returns the name recorded in a header for t, and shown by
// xproc ls and in messages: Go syntax, as a user of this module writes
// it. Types of the module's sync package are named xsync.X, as its users
// import it, even inside composite types; an unexported type of that
// package, which users never write, is named by the types of its fields
// joined with "+" (a named condition's segment holds
// "xsync.Mutex+xsync.Cond"). Other types are named as reflect names them.
func TypeName(t reflect.Type) string {
	switch {
	case t.PkgPath() == syncPath && token.IsExported(t.Name()):
		return "xsync." + t.Name()
	case t.PkgPath() == syncPath && t.Kind() == reflect.Struct:
		var fields []string
		for i := range t.NumField() {
			fields = append(fields, TypeName(t.Field(i).Type))
		}
		return strings.Join(fields, "+")
	case t.Name() != "":
		return t.String()
	case t.Kind() == reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + TypeName(t.Elem())
	case t.Kind() == reflect.Struct:
		if t.NumField() == 0 {
			return "struct {}"
		}
		var fields []string
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				fields = append(fields, TypeName(f.Type))
			} else {
				fields = append(fields, f.Name+" "+TypeName(f.Type))
			}
		}
		return "struct { " + strings.Join(fields, "; ") + " }"
	}
	return t.String()
}
