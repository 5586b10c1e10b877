// Command xproc runs the xproc demo and benchmarks, and lists, inspects
// and removes shared-memory segments.
//
//	xproc demo [flags]              classic multiprocessing workloads on shared memory
//	xproc bench [flags] [ROW...]    cross-process speed of locks, events, barriers, queues, pipes, pools
//	xproc ls [-dir D]               list segments
//	xproc inspect [-dir D] NAME     show a segment's header and the state inside it
//	xproc rm [-dir D] [-force] NAME...  remove segments (-force: files that are not segments too)
//	xproc rm -stale [-dir D] [-foreign] [NAME... | -prefix P]  remove stale segments (creator gone, nobody attached), and nothing else
//	xproc torture queue [-cycles N]  kill queue workers at random; count lost messages
//	xproc help [command]            print the usage of xproc or of a command
//
// Flags may come before or after the names. "xproc -h" and "xproc
// COMMAND -h" print the usage on standard output and exit 0; a wrong
// command or flag prints it on standard error and exits 2; a failure
// exits 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/xproc-go/xproc/process"
	"io"
	"os"
	"slices"
	"sort"
)

// commands maps a subcommand to its function. Functions get their own
// argument list and write to stdout; an error ends the program with
// status 1 (2 for a usage error).
var commands = map[string]func(args []string, stdout io.Writer) error{
	"ls":      cmdList,
	"inspect": cmdInspect,
	"rm":      cmdRemove,
}

// errUsage is returned by a command that has printed its usage because
// its arguments were wrong: the exit status is then 2.
var errUsage = errors.New("usage")

// usageError prints what is wrong with a command's arguments, and its
// usage, and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "xproc %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

const usage = `usage: xproc <command> [flags] [args]

commands:
  demo      run classic multiprocessing workloads on shared memory
  bench     measure locks, events, barriers, queues, pipes and pools across processes
  ls        list segments (in $XPROC_SHM_DIR or /dev/shm)
  inspect   show a segment's header and the state of what it holds
  rm        remove segments; rm -stale removes only stale ones (creator gone, nobody attached)
  torture   kill queue producers and consumers at random and check every message
  help      print this, or a command's usage: xproc help <command>

Run "xproc <command> -h" for a command's flags.
`

func main() {
	process.Init() // in a worker: runs its job and exits
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// flagOutput is where the commands' flag sets print usages and flag
// errors: standard output when the usage was asked for, standard error
// otherwise. execute sets it before running a command.
var flagOutput io.Writer = os.Stderr

// execute runs the command line args (without the program name) and
// returns the exit status.
func execute(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name, rest := args[0], args[1:]
	switch {
	case isHelp(name):
		fmt.Fprint(stdout, usage)
		return 0
	case name == "help" && len(rest) == 0:
		fmt.Fprint(stdout, usage)
		return 0
	case name == "help" && (rest[0] == "help" || isHelp(rest[0])):
		fmt.Fprint(stdout, usage) // xproc help help, xproc help -h
		return 0
	case name == "help":
		name, rest = rest[0], []string{"-h"}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "xproc: unknown command %q (commands: %s)\n\n%s", name, commandNames(), usage)
		return 2
	}
	flagOutput, usageShown = stderr, false
	if wantsHelp(rest) {
		flagOutput = stdout
	}
	switch err := cmd(rest, stdout); {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case usageShown:
		return 2 // a wrong flag or argument, reported with the usage
	default:
		fmt.Fprintln(stderr, "xproc:", err)
		return 1
	}
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsHelp reports whether a command's arguments ask for its usage: a
// help flag before any "--".
func wantsHelp(args []string) bool {
	i := slices.Index(args, "--")
	if i < 0 {
		i = len(args)
	}
	return slices.ContainsFunc(args[:i], isHelp)
}

func commandNames() string {
	names := []string{"help"}
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// newFlags returns the flag set of command name, whose arguments (after
// the flags) args describes for the usage line.
//
// The flag package prints the usage for -h and for every wrong flag;
// usageError prints it for wrong arguments. Either way usageShown tells
// execute that the command failed for its usage (exit status 2).
func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(flagOutput)
	fs.Usage = func() {
		usageShown = true
		fmt.Fprintf(fs.Output(), "usage: xproc %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// usageShown is set when a command's usage has been printed.
var usageShown bool

// parseArgs parses fs's flags wherever they are among args (xproc rm NAME
// -dir D), since names never start with '-', and returns the other
// arguments. After "--" everything is an argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		switch {
		case len(rest) == 0:
			return names, nil
		case len(consumed) > 0 && consumed[len(consumed)-1] == "--":
			return append(names, rest...), nil
		}
		names = append(names, rest[0])
		args = rest[1:]
	}
}
