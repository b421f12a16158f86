package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// The application role and the replication role of every cluster. Auth is
// trust on 127.0.0.1: this is a local learning stack; docs/running-locally.md
// says so.
const (
	appRole         = "scaleshop"
	replicationRole = "replicator"
	replicaSlot     = "catalog_replica"
)

type pgUser struct {
	cred *syscall.Credential
	uid  int
	gid  int
}

func lookupPostgresUser() (pgUser, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return pgUser{}, fmt.Errorf("no postgres user (is postgresql-15 installed?): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return pgUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

func (e *environment) pgDataDir(name string) string { return e.path("pg", name) }
func (e *environment) pgSocketDir() string          { return e.path("pg", "sockets") }

// pgOwnedDir creates dir owned by postgres with the given mode.
func pgOwnedDir(pu pgUser, dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if err := os.Chown(dir, pu.uid, pu.gid); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// letPostgresReach grants search (x) permission on the ancestors of dir that
// deny it to others, such as a mktemp clone directory (mode 700): the
// postgres user must reach its data directory.
func (e *environment) letPostgresReach(dir string) error {
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			e.say("granting o+x on %s so the postgres user can reach its data directory", d)
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
	}
	return nil
}

// asPostgres runs a Postgres tool as the postgres user (they refuse root).
func (e *environment) asPostgres(ctx context.Context, pu pgUser, log string, tool string, args ...string) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, filepath.Join(pgBin, tool), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pu.cred}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed (%v); see %s:\n%s", tool, err, log, tail(log, 15))
	}
	return nil
}

// preparePrimary runs initdb on a new cluster. Catalog primary, orders A and
// orders B are all made this way.
func (e *environment) initCluster(ctx context.Context, pu pgUser, name string) error {
	dir := e.pgDataDir(name)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := e.letPostgresReach(dir); err != nil {
		return err
	}
	if err := pgOwnedDir(pu, dir, 0o700); err != nil {
		return err
	}
	e.say("%s: initdb (first run)", name)
	return e.asPostgres(ctx, pu, e.logPath(name), "initdb", "-D", dir, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
}

// initReplica clones the primary with pg_basebackup, which writes
// standby.signal and primary_conninfo (-R) and creates the slot (-C) that
// keeps WAL until the replica has it.
func (e *environment) initReplica(ctx context.Context, pu pgUser, name string) error {
	dir := e.pgDataDir(name)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	primaryPort := e.stack.Port(topology.PGCatalogPrimary, "pg")
	// A slot left by an interrupted first run would make -C fail.
	if err := e.sql(ctx, topology.PGCatalogPrimary, "postgres",
		`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, replicaSlot); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	if err := pgOwnedDir(pu, dir, 0o700); err != nil {
		return err
	}
	e.say("%s: pg_basebackup from the primary (first run)", name)
	return e.asPostgres(ctx, pu, e.logPath(name), "pg_basebackup",
		"-h", "127.0.0.1", "-p", strconv.Itoa(primaryPort), "-U", replicationRole,
		"-D", dir, "-R", "-X", "stream", "-S", replicaSlot, "-C", "-c", "fast")
}

// postgresSpec runs the postmaster in the foreground. Settings go on the
// command line, so the data directory keeps initdb's files untouched.
func (e *environment) postgresSpec(pu pgUser, name string) procSpec {
	port := e.stack.Port(name, "pg")
	args := []string{
		"-D", e.pgDataDir(name),
		"-p", strconv.Itoa(port),
		"-k", e.pgSocketDir(),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		"-c", "shared_buffers=128MB",
		"-c", "wal_level=replica",
		"-c", "max_wal_senders=10",
		"-c", "max_replication_slots=10",
		"-c", "hot_standby=on",
		"-c", "hot_standby_feedback=on",
		"-c", "log_min_messages=warning",
		"-c", "logging_collector=off",
		"-c", "log_line_prefix=%m [%p] ",
	}
	return procSpec{
		path:       filepath.Join(pgBin, "postgres"),
		args:       args,
		env:        []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"},
		cred:       pu.cred,
		stopSignal: syscall.SIGINT, // fast shutdown: SIGTERM would wait for every client
	}
}

func (e *environment) adminDSN(component, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", e.stack.Port(component, "pg"), db)
}

func (e *environment) appDSN(component, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", appRole, e.stack.Port(component, "pg"), db)
}

// sql runs one statement as the superuser.
func (e *environment) sql(ctx context.Context, component, db, stmt string, args ...any) error {
	conn, err := pgx.Connect(ctx, e.adminDSN(component, db))
	if err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", component, stmt, err)
	}
	return nil
}

func pgReady(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// bootstrapCluster creates the roles and databases a cluster serves,
// idempotently, so a second `make run` changes nothing.
func (e *environment) bootstrapCluster(ctx context.Context, component string, dbs []string) error {
	conn, err := pgx.Connect(ctx, e.adminDSN(component, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	roles := []string{
		fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$`, appRole, appRole),
		fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s REPLICATION LOGIN; END IF; END $$`, replicationRole, replicationRole),
	}
	for _, stmt := range roles {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", component, err)
		}
	}
	for _, db := range dbs {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		// CREATE DATABASE takes no parameters; db names are ours, not input.
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, pgx.Identifier{db}.Sanitize(), appRole)); err != nil {
			return fmt.Errorf("%s: create database %s: %w", component, db, err)
		}
		e.say("%s: created database %s", component, db)
	}
	return nil
}

// verifyStreaming waits until the primary reports a streaming replica and a
// row written on the primary is visible on the replica.
func (e *environment) verifyStreaming(ctx context.Context) error {
	primary, err := pgx.Connect(ctx, e.adminDSN(topology.PGCatalogPrimary, "postgres"))
	if err != nil {
		return err
	}
	defer primary.Close(ctx)
	var state string
	err = primary.QueryRow(ctx, `SELECT state FROM pg_stat_replication WHERE state = 'streaming' LIMIT 1`).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("pg_stat_replication shows no streaming replica yet")
	}
	if err != nil {
		return err
	}
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		return err
	}
	replica, err := pgx.Connect(ctx, e.adminDSN(topology.PGCatalogReplica, "postgres"))
	if err != nil {
		return err
	}
	defer replica.Close(ctx)
	var caughtUp, inRecovery bool
	err = replica.QueryRow(ctx,
		`SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&inRecovery, &caughtUp)
	if err != nil {
		return err
	}
	if !inRecovery {
		return errors.New("replica is not in recovery: it is not a standby")
	}
	if !caughtUp {
		return errors.New("replica has not replayed the primary's WAL yet")
	}
	return nil
}
