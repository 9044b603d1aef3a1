// Package vswitchd holds the Open_vSwitch database schema and the reconciler
// that turns its rows into bridges, ports and mirrors, writing status back.
package vswitchd

import _ "embed"

// SchemaName is the name of the database that ovs-vsctl and other OVS
// clients ask for.
const SchemaName = "Open_vSwitch"

// SchemaJSON is the Open_vSwitch database schema in RFC 7047 form. It matches
// Open vSwitch's schema 8.3.x table for table and column for column, since
// those names and types are the protocol the OVS tools speak, and adds the
// Mirror "filter" column of newer OVS releases.
//
//go:embed vswitch.ovsschema
var SchemaJSON []byte
