package connmgr

import (
	"fmt"

	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// This file lends the channel's conversions to OpenFlow clients (gvs
// flows), so that a flow travels the same way in both directions.

// FlowMod13 is the OpenFlow 1.3 flow mod that carries f with command
// cmd; table is f's table, or ofproto.TableAll for a delete in every
// table. An action the wire cannot carry is an error, not a flow that
// does less than written.
func FlowMod13(f *flow.Flow, cmd, table uint8) (*openflow.FlowMod, error) {
	acts, gotoTable := actionsToWire(f.Actions, openflow.Version13)
	want := len(f.Actions)
	if gotoTable != nil {
		want--
	}
	if len(acts) != want {
		return nil, fmt.Errorf("flow %q: an action has no OpenFlow encoding in gvs yet", f.String())
	}
	m := &openflow.FlowMod{Cookie: f.Cookie, CookieMask: f.CookieMask, TableID: table, Command: cmd,
		IdleTimeout: f.IdleTimeout, HardTimeout: f.HardTimeout, Priority: f.Priority, BufferID: openflow.NoBuffer,
		OutPort: openflow.PortAny, OutGroup: 0xffffffff, Flags: flowFlags(f.Flags), Match: matchToWire(f.Match, true)}
	if len(acts) > 0 {
		m.Instructions = append(m.Instructions, openflow.ApplyActions{Actions: acts})
	}
	if gotoTable != nil {
		m.Instructions = append(m.Instructions, openflow.GotoTable{Table: *gotoTable})
	}
	return m, nil
}

// FlowFromStats13 converts one entry of an OpenFlow 1.3 flow stats reply
// to the model.
func FlowFromStats13(fs *openflow.FlowStats) (*flow.Flow, error) {
	match, err := matchFromWire(fs.Match)
	if err != nil {
		return nil, err
	}
	acts, err := instructionsFromWire(fs.Instructions)
	if err != nil {
		return nil, err
	}
	return &flow.Flow{Table: fs.TableID, Priority: fs.Priority, Cookie: fs.Cookie, IdleTimeout: fs.IdleTimeout,
		HardTimeout: fs.HardTimeout, Match: match, Actions: acts}, nil
}

// Match13 is a match as OpenFlow 1.3 carries it (OXM).
func Match13(m *flow.Match) []openflow.Field { return matchToWire(m, true) }

// FlowPort converts a port number of the wire to the model's numbering.
func FlowPort(p uint32) uint32 { return toFlowPort(p) }
