package shardmap_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

func TestReadDSNsDefaultsToTheNativeLayout(t *testing.T) {
	moved := "postgres://scaleshop@pg-orders-c:5432/orders_shard_3?sslmode=disable"
	dsns := shardmap.ReadDSNs(config.New(func(k string) string {
		if k == "ORDERS_SHARD_3_DSN" {
			return moved // shard 3 moved to another server: configuration only
		}
		return ""
	}))
	if len(dsns) != topology.LogicalShards {
		t.Fatalf("%d DSNs, want one per logical shard (%d)", len(dsns), topology.LogicalShards)
	}
	for shard, dsn := range dsns {
		if shard == 3 {
			if dsn != moved {
				t.Errorf("shard 3: %s, want the configured %s", dsn, moved)
			}
			continue
		}
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		wantPort := "5435" // server A holds 0-3
		if shard >= 4 {
			wantPort = "5436"
		}
		if u.Port() != wantPort || u.Path != "/"+topology.ShardDatabase(shard) {
			t.Errorf("shard %d: %s, want port %s database %s", shard, dsn, wantPort, topology.ShardDatabase(shard))
		}
	}
}

func TestOpenConnectsEachShardToItsOwnDatabase(t *testing.T) {
	stack := stacktest.Require(t)
	dsns := []string{stack.Database(t, topology.PGOrdersA), stack.Database(t, topology.PGOrdersB)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := pgdb.Pool{MaxOpen: 2, MaxLifetime: time.Minute, MaxIdleTime: time.Minute}
	shards, err := shardmap.Open(ctx, dsns, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer shards.Close()
	if shards.Len() != 2 {
		t.Fatalf("Len = %d, want 2", shards.Len())
	}
	for shard, dsn := range dsns {
		u, _ := url.Parse(dsn)
		var name string
		if err := shards.DB(shard).WithContext(ctx).Raw(`SELECT current_database()`).Scan(&name).Error; err != nil {
			t.Fatal(err)
		}
		if "/"+name != u.Path {
			t.Errorf("shard %d answers from database %s, want %s", shard, name, u.Path)
		}
	}
	if err := shards.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := shards.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "go_sql_max_open_connections" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "db_name" {
					pools[l.GetValue()] = true
				}
			}
		}
	}
	if !pools["shard-0"] || !pools["shard-1"] {
		t.Errorf("pool metrics for %v, want shard-0 and shard-1", pools)
	}
}

func TestOpenNamesTheShardItCannotReach(t *testing.T) {
	stack := stacktest.Require(t)
	good := stack.Database(t, topology.PGOrdersA)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unreachable := "postgres://scaleshop@127.0.0.1:1/orders_shard_1?sslmode=disable&connect_timeout=5"
	_, err := shardmap.Open(ctx, []string{good, unreachable}, pgdb.Pool{MaxOpen: 1, MaxLifetime: time.Minute, MaxIdleTime: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "shard-1") {
		t.Errorf("Open with shard 1 unreachable: %v, want an error naming shard-1", err)
	}
}
