package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database creates an empty database of the calling test's own on server
// (a Postgres component of the stack, such as topology.PGOrdersA), owned by
// the role the services connect as, and drops it when the test ends. It
// returns the DSN a service would use; the store under test migrates it as
// it does at start-up, so the test also runs the real migrations.
//
// Its own database lets a test assert on whole tables (every outbox row,
// every order of a customer) without seeing another test's rows, and makes
// advisory locks, which Postgres scopes to one database, the test's own.
func (s *Stack) Database(t testing.TB, server string) string {
	t.Helper()
	admin, ok := s.Endpoints.AdminDSNs[server]
	if !ok {
		t.Fatalf("the stack has no Postgres server %q", server)
	}
	owner := "scaleshop"
	if u, err := url.Parse(s.Endpoints.CatalogPrimaryDSN); err == nil && u.User.Username() != "" {
		owner = u.User.Username() // the role every service connects as
	}
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` OWNER `+pgx.Identifier{owner}.Sanitize()); err != nil {
		t.Fatalf("create test database on %s: %v", server, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions the test left open (a relay's, a pool's).
		if err := adminExec(ctx, admin, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s on %s: %v", name, server, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("admin DSN of %s: %v", server, err)
	}
	u.User, u.Path = url.User(owner), "/"+name
	return u.String()
}

func adminExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName is "test_<test name>_<random>", at most Postgres's 63
// bytes: readable in pg_database when a crashed run leaves one behind.
func databaseName(testName string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	return "test_" + base[:min(len(base), 63-len("test_")-1-8)] + "_" + hex.EncodeToString(b[:])
}
