package proxy

import (
	"context"

	"github.com/scaleshop/scaleshop/gateway/internal/balancer"
)

func contextWithMember(ctx context.Context, m *balancer.Member) context.Context {
	return context.WithValue(ctx, memberKey{}, m)
}
