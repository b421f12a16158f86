package catalog

import (
	"context"
	"sync/atomic"
)

type queryCounterKey struct{}

// WithQueryCounter returns a context that counts the database queries made
// on its behalf, so a request can report them (X-DB-Queries, a histogram)
// and a test can prove a cache stampede made one query, not a hundred.
func WithQueryCounter(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, queryCounterKey{}, n), n
}

// CountQuery adds one query to ctx's counter, if it has one.
func CountQuery(ctx context.Context) {
	if n, ok := ctx.Value(queryCounterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}
