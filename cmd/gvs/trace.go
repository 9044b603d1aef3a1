package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"gvs/internal/ofproto"
)

func init() { register(newTraceCmd) }

func newTraceCmd(a *app) *cobra.Command {
	var asJSON bool
	var ctNext []string
	cmd := &cobra.Command{
		Use:   "trace BRIDGE FLOW",
		Short: "explain what the bridge does with a packet (ofproto/trace in plain words)",
		Long: `trace asks gvsd what bridge BRIDGE would do with a packet described by
FLOW (ovs-ofctl's match syntax; ports by name; in_port required), without
sending it or learning from it: each table, rule and action it meets,
NORMAL's decision, the mirrors that copy it, how its fields change, and
where it leaves. It is the trace of ovs-appctl ofproto/trace. A FLOW gvs
cannot read is shown with the offending word marked. Several FLOW words
are joined with commas. A ct(table=N) action's recirculated copy is traced
too, as if the connection tracker said ct_state=trk,new, or what the next
--ct-next says (e.g. --ct-next trk,est; one per recirculation, in order).`,
		Args: rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTrace(a, args[0], strings.Join(args[1:], ","), ctNext, asJSON)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document instead of text")
	cmd.Flags().StringArrayVar(&ctNext, "ct-next", nil, "ct_state `flags` to assume for the next recirculation (trk,new,est,rel,rpl,inv,snat,dnat)")
	return cmd
}

func runTrace(a *app, bridge, flowText string, ctNext []string, asJSON bool) error {
	args := []string{bridge, flowText}
	for _, f := range ctNext {
		args = append(args, "ct-next="+f)
	}
	reply, err := callGvsd(a, "gvs/trace", args...)
	if err != nil {
		return err
	}
	var tr ofproto.TraceReport
	if err := json.Unmarshal([]byte(reply), &tr); err != nil {
		return fmt.Errorf("gvsd's trace: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tr)
	}
	writeTrace(a.stdout, &tr)
	return nil
}

// writeTrace explains a trace in words, then each recirculated pass.
func writeTrace(w io.Writer, tr *ofproto.TraceReport) {
	fmt.Fprintf(w, "Packet %s\nenters bridge %s by port %s.\n", tr.Flow, tr.Bridge, tr.InPort)
	writePass(w, tr)
	for i := range tr.Resumed {
		r := &tr.Resumed[i]
		fmt.Fprintf(w, "\nThe connection tracker's copy (recirculation %s), assumed to be ct_state %s, goes on in bridge %s:\n  %s\n",
			r.Recirc, r.CtState, r.Bridge, r.Flow)
		writePass(w, r)
	}
}

// writePass explains one pass of a trace.
func writePass(w io.Writer, tr *ofproto.TraceReport) {
	for _, s := range tr.Steps {
		fmt.Fprintln(w, traceLine(s))
	}
	fmt.Fprintln(w)
	if tr.Changed == "" {
		fmt.Fprintln(w, "The actions change nothing in the packet.")
	} else {
		fmt.Fprintf(w, "The actions change the packet to %s.\n", tr.Changed)
	}
	switch {
	case len(tr.Outputs) > 0:
		fmt.Fprintf(w, "It leaves by %s.\n", strings.Join(tr.Outputs, ", "))
	case strings.Contains(tr.DatapathActions, "recirc("):
		fmt.Fprintln(w, "It leaves by no port itself: the connection tracker's copy goes on (below).")
	case !tr.ToController:
		fmt.Fprintln(w, "It is dropped: it leaves by no port.")
	}
	if tr.ToController {
		fmt.Fprintln(w, "It goes to the OpenFlow controllers (packet-in).")
	}
	if len(tr.Copies) > 0 {
		fmt.Fprintf(w, "Mirrors copy it to %s.\n", strings.Join(tr.Copies, ", "))
	}
	fmt.Fprintf(w, "Packets like it (cached as %s) get the datapath actions %s.\n", tr.Megaflow, tr.DatapathActions)
}

// traceLine says one step, indented by its resubmit depth.
func traceLine(s ofproto.TraceStep) string {
	in := strings.Repeat("  ", s.Depth)
	switch s.Kind {
	case "bridge":
		return "\n" + in + "In bridge " + s.Bridge + ":"
	case "rule":
		rule := s.Rule
		if rule == "" {
			rule = "(every packet)"
		}
		line := fmt.Sprintf("%s  table %d: the rule %s, priority %d, matches", in, s.Table, rule, s.Priority)
		if s.Cookie != "" {
			line += " (cookie " + s.Cookie + ")"
		}
		return line
	case "miss":
		return fmt.Sprintf("%s  table %d: no rule matches", in, s.Table)
	case "action":
		return in + "    do " + s.Text
	case "mirror":
		return in + "    mirror " + s.Text + " selects the packet"
	}
	return in + "    " + s.Text
}
