package proxy

import (
	"context"

	"github.com/scaleshop/scaleshop/infra/balancer"
)

func contextWithMember(ctx context.Context, m *balancer.Member) context.Context {
	return context.WithValue(ctx, memberKey{}, m)
}
