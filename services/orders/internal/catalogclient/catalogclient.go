// Package catalogclient calls the catalog's internal API (prices, stock
// reservations) over the catalog clones with client-side load balancing:
// each attempt picks a clone, a failed attempt is retried once on another
// (every call of this API is idempotent), and the span of each call names
// the clone that served it.
package catalogclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// Backends picks the catalog clone for one attempt, avoiding the ones
// already tried; done reports how the attempt went (failed: no answer, or a
// 5xx other than 503), feeding the balancer's health view.
type Backends interface {
	Pick(tried []*url.URL) (target *url.URL, done func(failed bool), err error)
}

// Client is the catalog's internal API.
type Client struct {
	backends Backends
	http     *http.Client
	attempts int
	timeout  time.Duration
}

var _ orders.Catalog = (*Client)(nil)

// NewTransport is the shared, traced transport: idle connections sized for
// the expected concurrency (the default of 2 per host churns sockets).
func NewTransport(maxPerHost int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxPerHost
	t.MaxIdleConnsPerHost = maxPerHost
	t.IdleConnTimeout = 90 * time.Second
	// The catalog gzips large bodies for clients that accept it; between
	// two processes on one network that would spend CPU on both ends to
	// save bytes nobody pays for.
	t.DisableCompression = true
	return otelhttp.NewTransport(t, otelhttp.WithTracerProvider(otel.GetTracerProvider())) // else a tracer lookup per request
}

// New returns a client; timeout bounds each attempt.
func New(backends Backends, rt http.RoundTripper, timeout time.Duration) *Client {
	return &Client{backends: backends, http: &http.Client{Transport: rt}, attempts: 2, timeout: timeout}
}

// MaxIDs is the catalog's limit of ids per product lookup.
const MaxIDs = 100

// Products implements orders.Catalog; unknown ids are absent from the map.
func (c *Client) Products(ctx context.Context, ids []int64) (map[int64]orders.Product, error) {
	out := make(map[int64]orders.Product, len(ids))
	for start := 0; start < len(ids); start += MaxIDs {
		chunk := ids[start:min(start+MaxIDs, len(ids))]
		parts := make([]string, len(chunk))
		for i, id := range chunk {
			parts[i] = strconv.FormatInt(id, 10)
		}
		var body struct {
			Items []orders.Product `json:"items"`
		}
		path := "/internal/products?ids=" + strings.Join(parts, ",")
		if err := c.do(ctx, http.MethodGet, path, nil, &body); err != nil {
			return nil, err
		}
		for _, p := range body.Items {
			out[p.ID] = p
		}
	}
	return out, nil
}

type reservationRequest struct {
	OrderID string        `json:"order_id"`
	Items   []orders.Line `json:"items"`
}

type reservation struct {
	OrderID string                   `json:"order_id"`
	Status  orders.ReservationStatus `json:"status"`
}

// Reserve implements orders.Catalog.
func (c *Client) Reserve(ctx context.Context, orderID string, lines []orders.Line) (orders.ReservationStatus, error) {
	var out reservation
	if err := c.do(ctx, http.MethodPost, "/internal/reservations", reservationRequest{OrderID: orderID, Items: lines}, &out); err != nil {
		return "", err
	}
	switch out.Status {
	case orders.Reserved, orders.OutOfStock, orders.Released:
		return out.Status, nil
	}
	return "", fmt.Errorf("catalog reservation for %s answered status %q", orderID, out.Status)
}

// Release implements orders.Catalog.
func (c *Client) Release(ctx context.Context, orderID string) error {
	return c.do(ctx, http.MethodDelete, "/internal/reservations/"+url.PathEscape(orderID), nil, nil)
}

// do sends one call, retrying once on another clone when the first attempt
// got no answer or a 5xx.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	var tried []*url.URL
	var lastErr error
	for range c.attempts {
		target, done, err := c.backends.Pick(tried)
		if err != nil {
			return fmt.Errorf("catalog: %w: %w", err, problem.ErrUnavailable)
		}
		tried = append(tried, target)
		res, err := c.attempt(ctx, target, method, path, payload, out)
		done(res == memberFault)
		if err == nil || res == final || ctx.Err() != nil {
			return err
		}
		lastErr = err
	}
	return lastErr
}

type result int

const (
	final       result = iota // success, or an answer no other clone would change
	memberFault               // no answer or a 5xx: try another clone, count it against this one
	notNow                    // 503: the clone works but cannot serve now; try another
)

// attempt sends one request to one clone.
func (c *Client) attempt(ctx context.Context, base *url.URL, method, path string, payload []byte, out any) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	trace.SpanFromContext(ctx).AddEvent("catalog call", trace.WithAttributes(attribute.String("catalog.clone", base.Host)))
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.String()+path, body)
	if err != nil {
		return final, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return memberFault, fmt.Errorf("catalog %s %s via %s: %w: %w", method, path, base.Host, err, problem.ErrUnavailable)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return memberFault, fmt.Errorf("catalog %s %s: read: %w: %w", method, path, err, problem.ErrUnavailable)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		// "Not now" from a working clone (overload, a primary away): the
		// worker waits it out rather than dead-lettering the order.
		return notNow, fmt.Errorf("catalog %s %s via %s: %s: %w", method, path, base.Host, resp.Status, problem.ErrUnavailable)
	case resp.StatusCode >= 500:
		return memberFault, fmt.Errorf("catalog %s %s via %s: %s: %w", method, path, base.Host, resp.Status, problem.ErrUnavailable)
	case resp.StatusCode >= 300:
		// A 4xx from the catalog is a request it will never accept; the
		// orders service checked its inputs, so this is a contract breach.
		return final, fmt.Errorf("catalog %s %s: %s: %s: %w", method, path, resp.Status, truncate(b), orders.ErrCatalogRefused)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return final, fmt.Errorf("catalog %s %s: decode: %w: %w", method, path, err, orders.ErrCatalogRefused)
		}
	}
	return final, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
