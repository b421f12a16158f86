package pgdb

import "testing"

// TestServerAttrsNameTheServer: every SQL span says which Postgres it went
// to, for URL and key=value DSNs alike.
func TestServerAttrsNameTheServer(t *testing.T) {
	for _, tc := range []struct {
		dsn, host string
		port      int64
	}{
		{"postgres://scaleshop@127.0.0.1:15435/orders_shard_0?sslmode=disable", "127.0.0.1", 15435},
		{"host=127.0.0.1 port=5433 user=scaleshop dbname=catalog sslmode=disable", "127.0.0.1", 5433},
	} {
		got := map[string]any{}
		for _, a := range serverAttrs(tc.dsn) {
			got[string(a.Key)] = a.Value.AsInterface()
		}
		if got["server.address"] != tc.host || got["server.port"] != tc.port {
			t.Errorf("%s: %v, want server.address=%s server.port=%d", tc.dsn, got, tc.host, tc.port)
		}
	}
}
