// Command gvs is gvs's own command-line tool: a readable view of the
// switch and, over time, friendlier versions of what ovs-vsctl, ovs-ofctl
// and ovs-appctl do. It talks to gvsd directly (OVSDB and the control
// socket) and needs no Open vSwitch tools.
//
// Each subcommand lives in its own file, which registers a constructor
// with register from an init function; main.go only holds what every
// subcommand shares: the global flags, exit statuses and error printing.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses, for scripts.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed, or show found problems
	exitUsageErr = 2 // the command line is wrong
)

// app is what every subcommand shares: where output goes, the
// environment, and the global flags once parsed. Tests make their own.
type app struct {
	stdout, stderr io.Writer
	stdoutTTY      bool                // stdout is a terminal
	getenv         func(string) string // os.Getenv, or a test's map
	remote         string              // --db
	colorFlag      string              // --color
}

// newCommand builds one subcommand for an app.
type newCommand func(a *app) *cobra.Command

var commands []newCommand

// register adds a subcommand; each subcommand's file calls it from init.
func register(c newCommand) { commands = append(commands, c) }

// usageError is a wrong command line: gvs prints the command's usage
// after it and exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// problemsFound ends gvs with status 1 after the command has printed
// the problems (show's errors); the message only counts them.
type problemsFound struct{ msg string }

func (e problemsFound) Error() string { return e.msg }

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

func newRoot(a *app) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "gvs",
		Short: "gvs's command-line tool: a readable view of the switch, captures",
		Long: `gvs talks to gvsd directly (its OVSDB socket and control socket) and needs
no Open vSwitch tools. Exit status: 0 on success, 1 when the command fails
or (show) reports a problem, 2 when the command line is wrong.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				return printVersion(a.stdout, a.remote, false)
			}
			return usageErrorf("missing command")
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			_, err := parseColorMode(a.colorFlag)
			return err
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.remote, "db", "unix:"+filepath.Join(rundir(a.getenv), "db.sock"), "gvsd's OVSDB `remote`: unix:PATH or tcp:IP:PORT")
	pf.StringVar(&a.colorFlag, "color", "auto", "`when` to colour errors: auto (stdout is a terminal and $NO_COLOR is unset), always or never")
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions(colorModes, cobra.ShellCompDirectiveNoFileComp))
	root.Flags().BoolVar(&showVersion, "version", false, "the versions of gvs and of the running gvsd")
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// run runs gvs with args (without the program name) and returns the exit
// status.
func run(args []string, a *app) int {
	root := newRoot(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", cmd.CommandPath(), err)
	if errors.As(err, new(usageError)) {
		fmt.Fprint(a.stderr, cmd.UsageString())
		return exitUsageErr
	}
	return exitFailure
}

func main() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, stdoutTTY: isTerminal(os.Stdout), getenv: os.Getenv}
	os.Exit(run(os.Args[1:], a))
}

func rundir(getenv func(string) string) string {
	if d := getenv("OVS_RUNDIR"); d != "" {
		return d
	}
	return "/var/run/openvswitch"
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// takeGlobalFlags removes gvs's global flags (--db, --color) from the
// arguments of a subcommand that parses its own flags
// (DisableFlagParsing), and applies them. Every other flag of such a
// subcommand takes a value, so a flag without "=" skips the next
// argument: a value that looks like --db is not taken for one.
func takeGlobalFlags(cmd *cobra.Command, args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(rest, args[i:]...), nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			rest = append(rest, arg)
			continue
		}
		if name != "db" && name != "color" {
			rest = append(rest, arg)
			if !hasValue && i+1 < len(args) && name != "h" && name != "help" {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, usageErrorf("flag needs an argument: --%s", name)
			}
			i++
			value = args[i]
		}
		if err := cmd.Flag(name).Value.Set(value); err != nil {
			return nil, usageErrorf("--%s: %v", name, err)
		}
	}
	_, err := parseColorMode(cmd.Flag("color").Value.String())
	return rest, err
}
