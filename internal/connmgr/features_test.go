package connmgr

import (
	"testing"

	"gvs/internal/openflow"
)

// TestTableFeatures checks the reply ovs-ofctl reads before a 1.3 flow
// mod: every table, each property with its _MISS twin, the tables a
// goto_table may reach, and a chain of messages that the codec reads back.
func TestTableFeatures(t *testing.T) {
	bs, err := openflow.EncodeReplies(openflow.Version13, 7, tableFeatures())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) < 2 {
		t.Errorf("the reply fits %d message(s); it should need a multipart chain", len(bs))
	}
	var tables []openflow.TableFeatures
	for i, b := range bs {
		_, m, err := openflow.Decode(b)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		r := m.(*openflow.TableFeaturesReply)
		if more := r.Flags&openflow.ReplyMore != 0; more != (i < len(bs)-1) {
			t.Errorf("message %d of %d: more flag %v", i, len(bs), more)
		}
		tables = append(tables, r.Tables...)
	}
	if len(tables) != numTables {
		t.Fatalf("%d tables, want %d", len(tables), numTables)
	}
	for i, tf := range tables {
		if int(tf.TableID) != i || len(tf.Props) != 16 {
			t.Fatalf("entry %d: table %d with %d properties, want table %d with 16", i, tf.TableID, len(tf.Props), i)
		}
		seen := map[uint16][]byte{}
		for _, p := range tf.Props {
			seen[p.Type] = p.Data
		}
		for typ := uint16(0); typ < 16; typ++ {
			if _, ok := seen[typ]; !ok {
				t.Fatalf("table %d lacks property %d", i, typ)
			}
		}
		next := seen[tfpNextTables]
		if len(next) != numTables-1-i || len(next) > 0 && int(next[0]) != i+1 {
			t.Fatalf("table %d: next tables %v", i, next)
		}
	}
	// Property 8 is the match, 10 the wildcards.
	match := tables[0].Props[8].Data
	if len(match) == 0 || len(tables[0].Props[10].Data) == 0 {
		t.Fatalf("table 0: empty match or wildcards property")
	}
}
