package connmgr

import (
	"encoding/binary"

	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// OpenFlow 1.3 table feature property types (ofp_table_feature_prop_type);
// each has a _MISS twin one above it.
const (
	tfpInstructions   = 0
	tfpNextTables     = 2
	tfpWriteActions   = 4
	tfpApplyActions   = 6
	tfpMatch          = 8
	tfpWildcards      = 10
	tfpWriteSetfield  = 12
	tfpApplySetfield  = 14
	oxmHasMask        = 1 << 8
	instGotoTable     = 1
	instApplyActions  = 4
	actOutput13       = 0
	actPushVLAN13     = 17
	actPopVLAN13      = 18
	actSetNwTTL13     = 23
	actDecNwTTL13     = 24
	actSetField13     = 25
	tableFeaturesMiss = 1
)

// tableFeatures answers a 1.3 table features request as OVS 3.1 does in
// shape (every table, the sixteen properties, a multipart chain), with
// what gvs accepts as content: ovs-ofctl reads the reply before a 1.3
// flow mod and refuses to go on without it.
func tableFeatures() *openflow.TableFeaturesReply {
	props := featureProps()
	r := &openflow.TableFeaturesReply{Tables: make([]openflow.TableFeatures, numTables)}
	for i := range numTables {
		next := make([]byte, 0, numTables-i-1)
		for t := i + 1; t < numTables; t++ {
			next = append(next, byte(t))
		}
		tf := openflow.TableFeatures{TableID: uint8(i), MetadataMatch: ^uint64(0), MetadataWrite: ^uint64(0),
			MaxEntries: ofproto.DefaultMaxFlows}
		for _, p := range props {
			data := p.Data
			if p.Type == tfpNextTables {
				data = next
			}
			tf.Props = append(tf.Props, openflow.TableFeatureProp{Type: p.Type, Data: data},
				openflow.TableFeatureProp{Type: p.Type + tableFeaturesMiss, Data: data})
		}
		r.Tables[i] = tf
	}
	return r
}

// featureProps builds the properties every table shares (next tables is
// filled in per table): the instructions and actions the channel
// converts, and the fields of openflow.Fields.
func featureProps() []openflow.TableFeatureProp {
	var insts, acts, match, wild, set []byte
	for _, t := range []uint16{instGotoTable, instApplyActions} {
		insts = binary.BigEndian.AppendUint32(insts, uint32(t)<<16|4)
	}
	for _, t := range []uint16{actOutput13, actPushVLAN13, actPopVLAN13, actSetNwTTL13, actDecNwTTL13, actSetField13} {
		acts = binary.BigEndian.AppendUint32(acts, uint32(t)<<16|4)
	}
	for _, f := range openflow.Fields() {
		h := f.Header()
		m := h
		if f.Maskable {
			m = h&^0xff | oxmHasMask | (h&0xff)*2
			if f.Class == openflow.ClassExperimenter {
				m = h&^0xff | oxmHasMask | uint32(4+2*f.Len)
			}
		}
		match = appendHeader(match, m, f)
		wild = appendHeader(wild, h, f)
		set = appendHeader(set, h, f)
	}
	return []openflow.TableFeatureProp{
		{Type: tfpInstructions, Data: insts},
		{Type: tfpNextTables},
		{Type: tfpWriteActions},
		{Type: tfpApplyActions, Data: acts},
		{Type: tfpMatch, Data: match},
		{Type: tfpWildcards, Data: wild},
		{Type: tfpWriteSetfield},
		{Type: tfpApplySetfield, Data: set},
	}
}

// appendHeader appends an OXM header, with the experimenter id after it
// for an experimenter field.
func appendHeader(b []byte, h uint32, f openflow.FieldInfo) []byte {
	b = binary.BigEndian.AppendUint32(b, h)
	if f.Class == openflow.ClassExperimenter {
		b = binary.BigEndian.AppendUint32(b, f.Experimenter)
	}
	return b
}
