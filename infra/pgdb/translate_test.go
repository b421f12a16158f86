package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// TestTranslate holds every store to one answer per kind of database
// failure; the statuses are what an API client sees.
func TestTranslate(t *testing.T) {
	pg := func(code, constraint string) error {
		return &pgconn.PgError{Severity: "ERROR", Code: code, ConstraintName: constraint,
			Message: "internal text a client must not read"}
	}
	// What pgx returns for a server that went away in the middle of a
	// query: its own wrapper around the socket's error.
	reset := fmt.Errorf("failed to receive message: %w",
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	refused := fmt.Errorf("failed to connect: %w",
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	sku := Unique("products_sku_key", "a product with sku %q already exists", "a-1")

	tests := []struct {
		name   string
		err    error
		unique []UniqueName
		status int
		detail string // the client's detail, when it matters
	}{
		{name: "nil stays nil", err: nil, status: 0},
		{name: "unique violation, named", err: pg("23505", "products_sku_key"), unique: []UniqueName{sku},
			status: 409, detail: `a product with sku "a-1" already exists`},
		{name: "unique violation, another constraint", err: pg("23505", "orders_pkey"), unique: []UniqueName{sku},
			status: 409, detail: "it already exists"},
		{name: "unique violation, unnamed", err: pg("23505", "idempotency_keys_pkey"), status: 409, detail: "it already exists"},
		{name: "serialization failure", err: pg("40001", ""), status: 409},
		{name: "deadlock", err: pg("40P01", ""), status: 409},
		{name: "admin shutdown", err: pg("57P01", ""), status: 503},
		{name: "server starting up", err: pg("57P03", ""), status: 503},
		{name: "too many connections", err: pg("53300", ""), status: 503},
		{name: "connection exception class", err: pg("08006", ""), status: 503},
		{name: "read-only standby", err: pg("25006", ""), status: 503},
		{name: "syntax error is a bug", err: pg("42601", ""), status: 500},
		{name: "refused at connect", err: refused, status: 503},
		{name: "reset mid-query", err: reset, status: 503},
		{name: "EOF mid-query", err: fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), status: 503},
		{name: "connection closed", err: fmt.Errorf("query: %w", pgconn.ErrConnClosed), status: 503},
		{name: "deadline", err: fmt.Errorf("query: %w", context.DeadlineExceeded), status: 503},
		{name: "a scan bug", err: errors.New("sql: Scan error on column index 2: converting NULL to int64"), status: 500},
		{name: "already categorised passes through", err: problem.Errorf(problem.ErrNotFound, "no product 7"),
			status: 404, detail: "no product 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Translate(tt.err, tt.unique...)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("Translate(nil) = %v", got)
				}
				return
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the driver error is no longer in the chain: %v", got)
			}
			d := problem.From(got)
			if d.Status != tt.status {
				t.Fatalf("status %d, want %d (%v)", d.Status, tt.status, got)
			}
			if tt.detail != "" && d.Detail != tt.detail {
				t.Errorf("detail %q, want %q", d.Detail, tt.detail)
			}
			if strings.Contains(d.Detail, "internal text") || strings.Contains(d.Detail, "SQLSTATE") {
				t.Errorf("driver text reached the client: %q", d.Detail)
			}
			if d.Status == 503 {
				rec := httptest.NewRecorder()
				problem.Write(rec, d)
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("a 503 without Retry-After")
				}
			}
		})
	}
}

// A real refused connection, not a hand-made one: nothing listens on the
// port, so pgx's own error must translate to 503.
func TestTranslateRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(addr)
	_, err = pgconn.Connect(ctx, "host="+host+" port="+port+" user=nobody dbname=none sslmode=disable connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if got := problem.Status(Translate(err)); got != 503 {
		t.Fatalf("refused connection: status %d (%v)", got, err)
	}
}
