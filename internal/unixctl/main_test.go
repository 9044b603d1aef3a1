package unixctl

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// helperEnv makes the test binary act as a second process holding or
// probing a pidfile: fcntl locks only conflict between processes.
const helperEnv = "GVS_UNIXCTL_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		os.Exit(holdPidfile(os.Getenv(helperEnv + "_PATH")))
	case "probe":
		os.Exit(probePidfile(os.Getenv(helperEnv + "_PATH")))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		os.Exit(3)
	}
}

// holdPidfile locks the pidfile, says "locked" and keeps it until its
// stdin closes.
func holdPidfile(path string) int {
	pf, err := CreatePidfile(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	if err := pf.Remove(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// probePidfile tries to take the pidfile and reports the outcome.
func probePidfile(path string) int {
	pf, err := CreatePidfile(path)
	if err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	fmt.Println("acquired")
	pf.Remove()
	return 0
}
