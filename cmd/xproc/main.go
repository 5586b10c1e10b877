// Command xproc runs the xproc demo and benchmarks, and lists, inspects
// and removes shared-memory segments.
//
//	xproc demo [flags]      classic multiprocessing workloads on shared memory
//	xproc bench [flags]     cross-process speed of locks, events and barriers
//	xproc ls [-dir D]       list segments
//	xproc inspect NAME      show a segment's header and the state inside it
//	xproc rm [-stale] NAME  remove segments
//	xproc torture queue     kill queue workers at random; count lost messages
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// commands maps a subcommand to its function. Functions get their own
// argument list and write to stdout; an error ends the program with
// status 1.
var commands = map[string]func(args []string, stdout io.Writer) error{
	"ls":      cmdList,
	"inspect": cmdInspect,
	"rm":      cmdRemove,
}

// errUsage asks main to print the usage and exit with status 2.
var errUsage = errors.New("usage")

const usage = `usage: xproc <command> [flags] [args]

commands:
  demo      run classic multiprocessing workloads on shared memory
  bench     measure locks, events and barriers between two processes
  ls        list segments (in $XPROC_SHM_DIR or /dev/shm)
  inspect   show a segment's header and the state of what it holds
  rm        remove segments
  torture   kill queue producers and consumers at random and check every message

Run "xproc <command> -h" for a command's flags.
`

func main() {
	if worker := os.Getenv(workerEnv); worker != "" {
		os.Exit(runWorker(worker))
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "xproc: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := cmd(os.Args[2:], os.Stdout); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "xproc:", err)
		os.Exit(1)
	}
}

func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: xproc %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}
