package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"gvs/internal/ovsdb"
	"gvs/internal/version"
)

func init() { register(newVersionCmd) }

func newVersionCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "version",
		Short:             "the versions of gvs and of the running gvsd",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(a.stdout, a.remote, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"gvs": ..., "gvsd": {"ovs_version": ..., "db_version": ...} or null, "gvsd_error": ...}`)
	return cmd
}

// versions is what gvs version reports; --json prints it as it is.
type versions struct {
	GVS       string       `json:"gvs"`
	GVSD      *gvsdVersion `json:"gvsd"`       // null when gvsd is not reachable
	GVSDError *string      `json:"gvsd_error"` // why, then
}

type gvsdVersion struct {
	OVSVersion string `json:"ovs_version"`
	DBVersion  string `json:"db_version"`
}

// printVersion prints gvs's version and what the running gvsd reports. An
// unreachable gvsd is reported, not an error: the version of gvs is what
// was asked first.
func printVersion(w io.Writer, remote string, asJSON bool) error {
	v := versions{GVS: version.String()}
	c, err := ovsdb.Dial(remote)
	if err != nil {
		v.GVSDError = optString(err.Error())
	} else {
		defer c.Close()
		rows, err := c.Select("Open_vSwitch", "Open_vSwitch")
		if err != nil || len(rows) == 0 {
			return fmt.Errorf("reading the Open_vSwitch table: %v", err)
		}
		v.GVSD = &gvsdVersion{OVSVersion: str(rows[0]["ovs_version"]), DBVersion: str(rows[0]["db_version"])}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	fmt.Fprintf(w, "gvs %s\n", version.String())
	if v.GVSD == nil {
		fmt.Fprintf(w, "gvsd: not reachable (%s)\n", escape(*v.GVSDError))
		return nil
	}
	fmt.Fprintf(w, "gvsd: Open vSwitch %s compatible, database schema %s\n", escape(v.GVSD.OVSVersion), escape(v.GVSD.DBVersion))
	return nil
}
