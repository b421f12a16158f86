// Package smoke checks that the native stack stackctl starts is the real
// thing, wired as docs/architecture.md says: a streaming replica, two memcached nodes,
// every service healthy, and a request followed through the gateway to a
// catalog clone and into Jaeger.
package smoke

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/jackc/pgx/v5"

	"github.com/scaleshop/scaleshop/infra/scrape"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestReplicaStreamsWritesFromThePrimary(t *testing.T) {
	stack := stacktest.Require(t)
	ctx := context.Background()
	primaryDSN := strings.Replace(stack.Endpoints.AdminDSNs[topology.PGCatalogPrimary], "/postgres?", "/catalog?", 1)
	replicaDSN := strings.Replace(stack.Endpoints.AdminDSNs[topology.PGCatalogReplica], "/postgres?", "/catalog?", 1)
	primary, replica := connect(t, primaryDSN), connect(t, replicaDSN)

	var streaming int
	if err := primary.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`).Scan(&streaming); err != nil {
		t.Fatal(err)
	}
	if streaming != 1 {
		t.Fatalf("pg_stat_replication shows %d streaming replicas, want 1", streaming)
	}
	var inRecovery bool
	if err := replica.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("replica in recovery = %v (err %v), want true", inRecovery, err)
	}

	table := fmt.Sprintf("smoke_%d", rand.Int64())
	if _, err := primary.Exec(ctx, `CREATE TABLE `+table+` (note text)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = primary.Exec(context.Background(), `DROP TABLE `+table) })
	if _, err := primary.Exec(ctx, `INSERT INTO `+table+` VALUES ('written on the primary')`); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 10*time.Second, "row visible on the replica", func() error {
		var note string
		return replica.QueryRow(ctx, `SELECT note FROM `+table).Scan(&note)
	})
	if _, err := replica.Exec(ctx, `INSERT INTO `+table+` VALUES ('x')`); err == nil {
		t.Fatal("the replica accepted a write; it must be read-only")
	}
}

func TestMemcachedNodesStoreAndServe(t *testing.T) {
	stack := stacktest.Require(t)
	if len(stack.Endpoints.MemcachedServers) != 2 {
		t.Fatalf("want 2 memcached nodes, got %v", stack.Endpoints.MemcachedServers)
	}
	for _, addr := range stack.Endpoints.MemcachedServers {
		mc := memcache.New(addr)
		key := fmt.Sprintf("smoke:%d", rand.Int64())
		if err := mc.Set(&memcache.Item{Key: key, Value: []byte(addr), Expiration: 60}); err != nil {
			t.Fatalf("%s set: %v", addr, err)
		}
		it, err := mc.Get(key)
		if err != nil || string(it.Value) != addr {
			t.Fatalf("%s get = %v, %v", addr, it, err)
		}
	}
}

func TestEveryServiceIsHealthyAndExportsMetrics(t *testing.T) {
	stack := stacktest.Require(t)
	urls := append(append(append([]string{stack.Endpoints.GatewayURL},
		stack.Endpoints.CatalogURLs...), stack.Endpoints.OrdersURLs...), stack.Endpoints.WorkerURLs...)
	for _, base := range urls {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatalf("GET %s%s: %v", base, path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s = %s", base, path, resp.Status)
			}
		}
		metricsBase := base
		if base == stack.Endpoints.GatewayURL {
			metricsBase = stack.Endpoints.GatewayAdminURL // the public port serves the API alone
		}
		families, err := scrape.Get(context.Background(), http.DefaultClient, metricsBase)
		if err != nil {
			t.Errorf("%s/metrics: %v", base, err)
			continue
		}
		if _, ok := families["go_goroutines"]; !ok {
			t.Errorf("%s/metrics lacks the Go runtime metrics", base)
		}
	}
}

// jaegerTrace is the part of Jaeger's /api/traces/{id} answer the test reads.
type jaegerTrace struct {
	Data []struct {
		Spans []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				SpanID string `json:"spanID"`
			} `json:"references"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

func TestGatewayRequestReachesACatalogCloneAndItsTraceIsInJaeger(t *testing.T) {
	stack := stacktest.Require(t)
	resp, err := http.Get(stack.Endpoints.GatewayURL + "/api/products")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/products through the gateway = %s", resp.Status)
	}
	if served := resp.Header.Get("X-Served-By"); !strings.HasPrefix(served, "catalog-") {
		t.Fatalf("X-Served-By = %q, want a catalog clone", served)
	}
	traceID := resp.Header.Get("X-Trace-Id")
	if len(traceID) != 32 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("X-Trace-Id %q, X-Request-Id %q", traceID, resp.Header.Get("X-Request-Id"))
	}

	stacktest.Eventually(t, 15*time.Second, "trace with gateway and catalog spans in Jaeger", func() error {
		resp, err := http.Get(stack.Endpoints.JaegerQueryURL + "/api/traces/" + traceID)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var tr jaegerTrace
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return err
		}
		if len(tr.Data) != 1 {
			return fmt.Errorf("%d traces for id %s", len(tr.Data), traceID)
		}
		spanService := map[string]string{}
		for _, s := range tr.Data[0].Spans {
			spanService[s.SpanID] = tr.Data[0].Processes[s.ProcessID].ServiceName
		}
		var gatewaySpans, catalogServerUnderGateway int
		for _, s := range tr.Data[0].Spans {
			switch spanService[s.SpanID] {
			case "gateway":
				gatewaySpans++
			case "catalog":
				if s.OperationName == "GET /api/products" && len(s.References) == 1 &&
					spanService[s.References[0].SpanID] == "gateway" {
					catalogServerUnderGateway++
				}
			}
		}
		if gatewaySpans < 2 || catalogServerUnderGateway != 1 {
			return fmt.Errorf("gateway spans %d (want server + client), catalog server spans parented by the gateway %d (want 1)",
				gatewaySpans, catalogServerUnderGateway)
		}
		return nil
	})
}
