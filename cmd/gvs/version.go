package main

import (
	"fmt"
	"io"

	"gvs/internal/ovsdb"
	"gvs/internal/version"
)

// printVersion prints gvs's version and what the running gvsd reports.
func printVersion(w io.Writer, remote string) error {
	fmt.Fprintf(w, "gvs %s\n", version.String())
	c, err := ovsdb.Dial(remote)
	if err != nil {
		fmt.Fprintf(w, "gvsd: not reachable (%v)\n", err)
		return nil
	}
	defer c.Close()
	rows, err := c.Select("Open_vSwitch", "Open_vSwitch")
	if err != nil || len(rows) == 0 {
		return fmt.Errorf("reading the Open_vSwitch table: %v", err)
	}
	fmt.Fprintf(w, "gvsd: Open vSwitch %s compatible, database schema %s\n", str(rows[0]["ovs_version"]), str(rows[0]["db_version"]))
	return nil
}
