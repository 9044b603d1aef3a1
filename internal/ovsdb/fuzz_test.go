package ovsdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// Fixed uuids of the rows fuzzSetup creates, so seeds can refer to them.
const (
	fuzzRootA  = "aaaaaaaa-0000-4000-8000-000000000001"
	fuzzRootB  = "aaaaaaaa-0000-4000-8000-000000000002"
	fuzzChild  = "cccccccc-0000-4000-8000-000000000001"
	fuzzLeaf   = "eeeeeeee-0000-4000-8000-000000000001"
	fuzzAnchor = "bbbbbbbb-0000-4000-8000-000000000001"
)

var fuzzSetupOps = `[
 {"op":"insert","table":"Root","uuid":"` + fuzzRootA + `","uuid-name":"a","row":{"name":"a","n":5,"nums":["set",[1,2]],
  "opts":["map",[["k","v"]]],"kids":["named-uuid","c"],"kidmap":["map",[["x",["named-uuid","c"]]]],"watch":["named-uuid","b"],"tags":"t"}},
 {"op":"insert","table":"Root","uuid":"` + fuzzRootB + `","uuid-name":"b","row":{"name":"b","level":7,"color":"red","ratio":1.5}},
 {"op":"insert","table":"Child","uuid":"` + fuzzChild + `","uuid-name":"c","row":{"label":"c","leaves":["named-uuid","l"],"buddy":["named-uuid","c"]}},
 {"op":"insert","table":"Leaf","uuid":"` + fuzzLeaf + `","uuid-name":"l","row":{"v":1}},
 {"op":"insert","table":"Anchor","uuid":"` + fuzzAnchor + `","row":{"target":["named-uuid","b"],"pin":["named-uuid","a"]}},
 {"op":"insert","table":"Config","row":{"k":"only"}}]`

// fuzzTransactSeeds are transactions as real clients send them.
var fuzzTransactSeeds = []string{
	`[{"op":"select","table":"Root","where":[["name","==","a"]],"columns":["name","nums"]}]`,
	`[{"op":"insert","table":"Root","uuid-name":"r","row":{"name":"new","kids":["named-uuid","k"]}},{"op":"insert","table":"Child","uuid-name":"k","row":{"label":"k"}}]`,
	`[{"op":"update","table":"Root","where":[["_uuid","==",["uuid","` + fuzzRootA + `"]]],"row":{"n":9,"opts":["map",[["a","b"]]]}}]`,
	`[{"op":"mutate","table":"Root","where":[],"mutations":[["n","+=",1],["nums","insert",["set",[7]]],["opts","delete",["set",["k"]]]]}]`,
	`[{"op":"mutate","table":"Root","where":[["name","==","a"]],"mutations":[["n","/=",0]]}]`,
	`[{"op":"mutate","table":"Root","where":[["name","==","a"]],"mutations":[["n","*=",9223372036854775807]]}]`,
	`[{"op":"mutate","table":"Root","where":[],"mutations":[["kids","delete",["set",[["uuid","` + fuzzChild + `"]]]],["kidmap","delete",["set",["x"]]]]}]`,
	`[{"op":"delete","table":"Root","where":[["name","==","b"]]}]`,
	`[{"op":"delete","table":"Anchor","where":[]},{"op":"delete","table":"Root","where":[["name","==","b"]]}]`,
	`[{"op":"delete","table":"Child","where":[]}]`,
	`[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"name":"b"}}]`,
	`[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"name":"t"}},{"op":"update","table":"Root","where":[["name","==","b"]],"row":{"name":"a"}}]`,
	`[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[{"name":"a"},{"name":"b"}],"timeout":0}]`,
	`[{"op":"wait","table":"Root","where":[],"columns":["nums"],"until":"!=","rows":[],"timeout":10}]`,
	`[{"op":"insert","table":"Config","row":{}}]`,
	`[{"op":"comment","comment":"ovs-vsctl: add-br br0"},{"op":"commit","durable":true},{"op":"abort"}]`,
	`[{"op":"assert","lock":"x"}]`,
	`[{"op":"insert","table":"Root","row":{"name":"w","watch":["set",[["uuid","` + fuzzRootA + `"],["uuid","00000000-0000-0000-0000-000000000000"]]]}}]`,
	`[{"op":"update","table":"Child","where":[],"row":{"buddy":["set",[]],"leaves":["set",[]]}}]`,
	`[{"op":"select","table":"Root","where":[["nums","includes",["set",[1]]],["opts","excludes",["map",[["k","z"]]]],["n","<=",5.5]]}]`,
	`[{"op":"insert","table":"Root","uuid-name":"d","row":{"name":"d"}},{"op":"insert","table":"Root","uuid-name":"d","row":{"name":"e"}}]`,
	`[1,"x",null,{"op":null}]`,
	`{"op":"select","table":"Root","where":[]}`,
}

func newFuzzDB(t testing.TB, s *Schema) *DB {
	db := NewDB(s, nil)
	res := db.Transact(ops(t, fuzzSetupOps))
	for _, r := range res {
		if errTag(r) != "" {
			t.Fatalf("fuzz setup failed: %s", mustJSONText(t, res))
		}
	}
	return db
}

// checkResultShape verifies the result array of a transaction of n ops:
// an error can only be last; fewer results than ops only with an error;
// one more only for a commit-time error.
func checkResultShape(res []any, n int) error {
	if len(res) > n+1 {
		return fmt.Errorf("%d results for %d ops", len(res), n)
	}
	for i, r := range res {
		if errTag(r) != "" && i != len(res)-1 {
			return fmt.Errorf("error at %d is not the last of %d results", i, len(res))
		}
	}
	failed := len(res) > 0 && errTag(res[len(res)-1]) != ""
	if len(res) != n && !failed {
		return fmt.Errorf("%d results for %d ops and no error", len(res), n)
	}
	if _, err := json.Marshal(res); err != nil {
		return fmt.Errorf("results cannot be encoded: %v", err)
	}
	return nil
}

func FuzzTransact(f *testing.F) {
	for _, s := range fuzzTransactSeeds {
		f.Add([]byte(s))
	}
	schema := testSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeJSON(data)
		if err != nil {
			return
		}
		opList, ok := v.([]any)
		if !ok {
			opList = []any{v}
		}
		db := newFuzzDB(t, schema)
		// Twice: the second run meets the state the first one left.
		for round := 0; round < 2; round++ {
			before := dumpDB(t, db, true)
			res := db.Transact(opList)
			if err := checkResultShape(res, len(opList)); err != nil {
				t.Fatalf("round %d: %v: %s", round, err, mustJSONText(t, res))
			}
			db.mu.Lock()
			err := invariantError(db)
			db.mu.Unlock()
			if err != nil {
				t.Fatalf("round %d: after %s: %v", round, data, err)
			}
			if len(res) > 0 && errTag(res[len(res)-1]) != "" && dumpDB(t, db, true) != before {
				t.Fatalf("round %d: failed transaction %s changed the database", round, data)
			}
		}
	})
}

// fuzzRequestSeeds are JSON-RPC messages as OVS clients send them.
var fuzzRequestSeeds = []string{
	`{"id":0,"method":"get_schema","params":["_Server"]}`,
	`{"id":1,"method":"monitor_cond","params":["_Server",["monid","_Server"],{"Database":[{"where":[["name","==","Test"]],"columns":["cid","connected","index","leader","model","name","schema","sid"]}]}]}`,
	`{"id":2,"method":"get_schema","params":["Test"]}`,
	`{"id":3,"method":"monitor_cond_since","params":["Test",["monid","Test"],{"Root":[{"columns":["name","kids","nums"]}],"Child":[{"columns":["label"]}]},"00000000-0000-0000-0000-000000000000"]}`,
	`{"id":4,"method":"transact","params":["Test",{"op":"wait","table":"Root","where":[["_uuid","==",["uuid","` + fuzzRootA + `"]]],"columns":["kids"],"until":"==","rows":[{"kids":["uuid","` + fuzzChild + `"]}],"timeout":0},{"op":"insert","table":"Root","row":{"name":"n"}},{"op":"comment","comment":"ovs-vsctl: x"}]}`,
	`{"id":5,"method":"monitor_cond_change","params":[["monid","Test"],["monid","Test"],{"Root":[{"where":[["name","==","a"]]}]}]}`,
	`{"id":6,"method":"monitor_cancel","params":[["monid","Test"]]}`,
	`{"id":7,"method":"monitor","params":["Test",null,{"Root":{"columns":["name"],"select":{"initial":true,"modify":false}}}]}`,
	`{"id":8,"method":"lock","params":["L"]}{"id":9,"method":"transact","params":["Test",{"op":"assert","lock":"L"}]}{"id":10,"method":"unlock","params":["L"]}`,
	`{"id":11,"method":"steal","params":["L"]}`,
	`{"id":12,"method":"transact","params":["Test",{"op":"wait","table":"Root","where":[],"until":"==","rows":[],"timeout":5}]}{"id":null,"method":"cancel","params":[12]}`,
	`{"id":13,"method":"echo","params":["x"]}{"id":"x","result":[],"error":null}`,
	`{"id":14,"method":"list_dbs","params":[]} {"id":15,"method":"get_server_id","params":[]}`,
	`{"id":16,"method":"set_db_change_aware","params":[true]}`,
	`{"id":17,"method":"transact","params":["_Server",{"op":"select","table":"Database","where":[]}]}`,
	`{"id":18,"method":"transact","params":["Test",{"op":"mutate","table":"Root","where":[],"mutations":[["n","+=",1]]}]}`,
	`[1,2,3]{"method":1}{"id":{},"method":"echo","params":{}}`,
	`{"id":"\"}{","method":"echo","params":["]}\\\""]}`,
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range fuzzRequestSeeds {
		f.Add([]byte(s))
	}
	db := newFuzzDB(f, testSchema(f))
	srv, err := NewServer(db)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		ss := newSession(srv, server)
		checked := make(chan struct{})
		go func() {
			defer close(checked)
			checkReplies(t, client)
		}()
		go ss.writer()
		mr := newMessageReader(bytes.NewReader(data), 1<<16)
		for i := 0; i < 50; i++ {
			msg, err := mr.next()
			if err != nil {
				break
			}
			if len(msg) == 0 || (msg[0] != '{' && msg[0] != '[') {
				t.Fatalf("message %q does not start a JSON object or array", msg)
			}
			decodeRequest(msg)
			ss.handle(msg)
		}
		ss.teardown()
		<-checked
		db.mu.Lock()
		err := invariantError(db)
		db.mu.Unlock()
		if err != nil {
			t.Fatalf("after %q: %v", data, err)
		}
	})
}

// checkReplies checks that every message the server sends, queued or
// written directly, is a JSON-RPC object, until the connection closes.
func checkReplies(t *testing.T, conn net.Conn) {
	dec := json.NewDecoder(conn)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("server sent invalid JSON: %v", err)
				_, _ = io.Copy(io.Discard, conn) // so that the server never blocks
			}
			return
		}
		if _, ok := m["id"]; !ok {
			t.Errorf("server message without id: %v", m)
		}
	}
}

// TestMessageReaderFraming checks splitting of a stream into messages.
func TestMessageReaderFraming(t *testing.T) {
	in := ` {"a":"}{"}` + "\n" + `[1,[2]]{"b":"\"}"}` + "\t"
	mr := newMessageReader(bytes.NewReader([]byte(in)), 100)
	for _, want := range []string{`{"a":"}{"}`, `[1,[2]]`, `{"b":"\"}"}`} {
		got, err := mr.next()
		if err != nil || string(got) != want {
			t.Fatalf("next = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := mr.next(); err == nil {
		t.Fatal("no error at end of stream")
	}
	mr = newMessageReader(bytes.NewReader([]byte(`{"x":1`)), 100)
	if _, err := mr.next(); err == nil {
		t.Fatal("truncated message accepted")
	}
	mr = newMessageReader(bytes.NewReader(bytes.Repeat([]byte("["), 200)), 100)
	if _, err := mr.next(); err != errTooLarge {
		t.Fatalf("oversized message: %v, want errTooLarge", err)
	}
}
