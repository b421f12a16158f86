// Package shardmap connects to the orders' logical shards. The map from
// logical shard to DSN is configuration (ORDERS_SHARD_<n>_DSN), so moving a
// logical shard to another server is a config change plus a data copy.
package shardmap

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// ReadDSNs reads one DSN per logical shard, defaulting to the native
// layout (0-3 on server A at 5435, 4-7 on B at 5436).
func ReadDSNs(env *config.Env) []string {
	dsns := make([]string, topology.LogicalShards)
	for shard := range dsns {
		port := 5435
		if topology.ShardServer(shard) == topology.PGOrdersB {
			port = 5436
		}
		def := fmt.Sprintf("postgres://scaleshop@127.0.0.1:%d/%s?sslmode=disable", port, topology.ShardDatabase(shard))
		dsns[shard] = env.String(fmt.Sprintf("ORDERS_SHARD_%d_DSN", shard), def)
	}
	return dsns
}

// Shards holds one pool per logical shard.
type Shards struct{ dbs []*gorm.DB }

// Open connects to every shard.
func Open(ctx context.Context, dsns []string, pool pgdb.Pool) (*Shards, error) {
	s := &Shards{}
	for i, dsn := range dsns {
		db, err := pgdb.Open(ctx, dsn, pool, fmt.Sprintf("shard-%d", i))
		if err != nil {
			s.Close()
			return nil, err
		}
		s.dbs = append(s.dbs, db)
	}
	return s, nil
}

// Len is the number of logical shards.
func (s *Shards) Len() int { return len(s.dbs) }

// DB returns a logical shard's pool.
func (s *Shards) DB(shard int) *gorm.DB { return s.dbs[shard] }

// Ping checks every shard, reporting each one that fails.
func (s *Shards) Ping(ctx context.Context) error {
	var errs []error
	for i, db := range s.dbs {
		if err := pgdb.Ping(ctx, db); err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// RegisterMetrics exports every shard pool's database/sql statistics
// (go_sql_*, db_name=shard-N): waits there mean a pool is too small.
func (s *Shards) RegisterMetrics(reg prometheus.Registerer) error {
	for i, db := range s.dbs {
		if err := pgdb.RegisterPoolMetrics(reg, db, fmt.Sprintf("shard-%d", i)); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every pool.
func (s *Shards) Close() {
	for _, db := range s.dbs {
		_ = pgdb.Close(db)
	}
}
