package ovsdb

import "encoding/json"

// serverSchema is the schema of the _Server database, through which
// clients learn that each database is a standalone one, always connected
// and its own leader.
const serverSchema = `{
 "name": "_Server", "version": "1.2.0",
 "tables": {
  "Database": {
   "isRoot": true,
   "columns": {
    "name": {"type": "string"},
    "model": {"type": {"key": {"type": "string", "enum": ["set", ["clustered", "relay", "standalone"]]}}},
    "connected": {"type": "boolean"},
    "leader": {"type": "boolean"},
    "schema": {"type": {"key": {"type": "string"}, "min": 0, "max": 1}},
    "cid": {"type": {"key": {"type": "uuid"}, "min": 0, "max": 1}},
    "sid": {"type": {"key": {"type": "uuid"}, "min": 0, "max": 1}},
    "index": {"type": {"key": {"type": "integer"}, "min": 0, "max": 1}}
   }
  }
 }
}`

func newServerDB(dbs []*DB) (*DB, error) {
	s, err := ParseSchema([]byte(serverSchema))
	if err != nil {
		return nil, err
	}
	sdb := NewDB(s, nil)
	all := append([]*DB{sdb}, dbs...)
	ops := make([]any, 0, len(all))
	for _, db := range all {
		ops = append(ops, map[string]any{"op": "insert", "table": "Database", "row": map[string]any{
			"name": db.Name(), "model": "standalone", "connected": true, "leader": true,
			"schema": []any{"set", []any{string(compactJSON(db.schema.JSON))}},
		}})
	}
	results := sdb.Transact(ops)
	if e, ok := results[len(results)-1].(map[string]any); ok && e["error"] != nil {
		return nil, &Error{Tag: e["error"].(string), Details: e["details"].(string)}
	}
	return sdb, nil
}

func compactJSON(raw json.RawMessage) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, _ := json.Marshal(v)
	return b
}
