package catalogcache

import (
	"context"
	"errors"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The memcached calls, each with one span (hit or miss, server, instance)
// and one counter increment. gomemcache takes no context; its own Timeout
// bounds every call.

var (
	attrSystem = attribute.String("db.system.name", "memcached")
	attrHit    = attribute.Key("cache.hit")
	attrServer = attribute.Key("server.address")
	attrKeys   = attribute.Key("cache.keys")
)

func (c *Cache) start(ctx context.Context, name, key string) (context.Context, trace.Span) {
	return c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrSystem, c.instance, attrServer.String(c.owner(key))))
}

// fail counts, records and logs a memcached error; the caller carries on
// without the cache.
func (c *Cache) fail(ctx context.Context, span trace.Span, op string, err error) {
	c.ops.WithLabelValues(op, "error").Inc()
	span.RecordError(err)
	span.SetStatus(codes.Error, "memcached "+op+" failed")
	c.log.DebugContext(ctx, "memcached error, serving without the cache", "op", op, "err", err)
}

// get returns the item and whether it was a hit.
func (c *Cache) get(ctx context.Context, key string) (*memcache.Item, bool) {
	ctx, span := c.start(ctx, "memcached get", key)
	defer span.End()
	it, err := c.mc.Get(key)
	switch {
	case err == nil:
		c.ops.WithLabelValues("get", "hit").Inc()
		span.SetAttributes(attrHit.Bool(true))
		return it, true
	case errors.Is(err, memcache.ErrCacheMiss):
		c.ops.WithLabelValues("get", "miss").Inc()
		span.SetAttributes(attrHit.Bool(false))
	default:
		c.fail(ctx, span, "get", err)
		span.SetAttributes(attrHit.Bool(false))
	}
	return nil, false
}

// getMulti returns the items found; a failing server's keys are misses.
func (c *Cache) getMulti(ctx context.Context, keys []string) map[string]*memcache.Item {
	ctx, span := c.tracer.Start(ctx, "memcached get_multi", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrSystem, c.instance, attrKeys.Int(len(keys))))
	defer span.End()
	items, err := c.mc.GetMulti(keys)
	if err != nil {
		// gomemcache returns what the healthy servers had along with the error.
		c.fail(ctx, span, "get_multi", err)
	}
	hits := len(items)
	c.ops.WithLabelValues("get_multi", "hit").Add(float64(hits))
	c.ops.WithLabelValues("get_multi", "miss").Add(float64(len(keys) - hits))
	span.SetAttributes(attribute.Int("cache.hits", hits), attrHit.Bool(hits == len(keys)))
	return items
}

// add stores key only if absent (a fill); false when not stored.
func (c *Cache) add(ctx context.Context, key string, value []byte, d time.Duration) bool {
	ctx, span := c.start(ctx, "memcached add", key)
	defer span.End()
	err := c.mc.Add(&memcache.Item{Key: key, Value: value, Expiration: ttl(d)})
	switch {
	case err == nil:
		c.ops.WithLabelValues("add", "ok").Inc()
		return true
	case errors.Is(err, memcache.ErrNotStored):
		c.ops.WithLabelValues("add", "not_stored").Inc()
	default:
		c.fail(ctx, span, "add", err)
	}
	return false
}

// set stores key unconditionally (after a commit).
func (c *Cache) set(ctx context.Context, key string, value []byte, d time.Duration) bool {
	ctx, span := c.start(ctx, "memcached set", key)
	defer span.End()
	if err := c.mc.Set(&memcache.Item{Key: key, Value: value, Expiration: ttl(d)}); err != nil {
		c.fail(ctx, span, "set", err)
		return false
	}
	c.ops.WithLabelValues("set", "ok").Inc()
	return true
}

func (c *Cache) delete(ctx context.Context, key string) {
	ctx, span := c.start(ctx, "memcached delete", key)
	defer span.End()
	if err := c.mc.Delete(key); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		c.fail(ctx, span, "delete", err)
		return
	}
	c.ops.WithLabelValues("delete", "ok").Inc()
}
