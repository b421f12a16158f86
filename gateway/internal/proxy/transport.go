package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/infra/balancer"
)

// Errors the transport returns; the ReverseProxy's ErrorHandler maps them.
var (
	errNoMember   = errors.New("no healthy member")
	errTryTimeout = errors.New("upstream try timed out")
)

// exchange is one proxied request's state, shared by the handler and the
// transport through the request context.
type exchange struct {
	route   *Route
	budget  *balancer.RetryBudget
	member  *balancer.Member // the one that answered (or was tried last)
	retries int
	start   time.Time
	// longPoll is the wait a long poll (GET ?wait=) asked for. The member
	// holds such a request on purpose: it gets that much more time, is
	// not retried once sent, and its duration or timeout tells nothing
	// about the member's health or speed.
	longPoll time.Duration
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// NewTransport is the one Transport the gateway shares across every pool.
// Go's default keeps 2 idle connections per host, which opens and closes
// sockets under load; compression is off because a proxy passes bodies
// through as they are.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// balancingTransport picks a member per try, retries on another member
// when that is safe and the budget allows, and bounds each try.
type balancingTransport struct {
	next        http.RoundTripper
	tryTimeout  time.Duration
	maxAttempts int
	metrics     *metrics
}

func (t *balancingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	pool := x.route.Pool
	x.budget.Request()
	var tried []*balancer.Member
	for attempt := 1; ; attempt++ {
		m, err := pool.Pick(tried...)
		if err != nil {
			return nil, errNoMember
		}
		tried = append(tried, m)
		x.member = m
		sent := time.Now()
		resp, res := t.try(req, m, attempt, x.longPoll)
		t.metrics.tryDuration.WithLabelValues(pool.Name, m.Label()).Observe(time.Since(sent).Seconds())
		t.metrics.tries.WithLabelValues(pool.Name, m.Label(), res.label).Inc()
		if res.retry == noRetry || !mayRetry(req, res.retry) || req.Context().Err() != nil || attempt >= t.maxAttempts ||
			(x.longPoll > 0 && res.retry != alwaysRetry) {
			return resp, res.err
		}
		if !x.budget.TryRetry() {
			t.metrics.budgetExhausted.WithLabelValues(pool.Name).Inc()
			return resp, res.err
		}
		if resp != nil {
			discard(resp)
		}
		x.retries++
		t.metrics.retries.WithLabelValues(pool.Name, res.label).Inc()
		trace.SpanFromContext(req.Context()).AddEvent("retry", trace.WithAttributes(
			attribute.String("scaleshop.member", m.Label()), attribute.String("reason", res.label)))
	}
}

// retryKind says when a failed try may be repeated elsewhere.
type retryKind int

const (
	noRetry        retryKind = iota
	alwaysRetry              // the request never reached the member
	idempotentOnly           // it may have been processed: only if repeating is harmless
)

type tryResult struct {
	err   error
	retry retryKind
	label string // for metrics: ok, 5xx, 503, connect_error, timeout, error
}

// try sends req to m once. On success the response body, when closed,
// ends the member's lease and the try's context.
func (t *balancingTransport) try(req *http.Request, m *balancer.Member, attempt int, longPoll time.Duration) (*http.Response, tryResult) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.tryTimeout+longPoll, func() { cancel(errTryTimeout) })
	// The first try sends the ReverseProxy's outgoing request, which is
	// already a copy of the client's made for this exchange, with a URL
	// of its own; a retry sends a deep copy, because the transport may
	// still be reading the headers of the try before (a Header.Clone per
	// request was 3 % of the gateway's CPU).
	var out *http.Request
	if attempt == 1 {
		out = req.WithContext(ctx)
		u := *req.URL
		out.URL = &u
	} else {
		out = req.Clone(ctx)
	}
	out.URL.Scheme, out.URL.Host, out.Host = m.URL.Scheme, m.URL.Host, ""
	if attempt > 1 && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			timer.Stop()
			cancel(nil)
			return nil, tryResult{err: err, label: "error"}
		}
		out.Body = body
	}
	lease := m.Acquire()
	resp, err := t.next.RoundTrip(out)
	headersInTime := timer.Stop()
	if err == nil && !headersInTime {
		discard(resp) // headers came as the timer fired; the context is gone
		resp, err = nil, errTryTimeout
	}
	if err != nil {
		cancel(nil)
		res := classify(req.Context(), ctx, err)
		outcome := balancer.Failure
		switch res.label {
		case "dropped":
			outcome = balancer.Dropped
		case "connect_error":
			outcome = balancer.Unreachable
		}
		lease.Done(healthOutcome(outcome, longPoll))
		return nil, res
	}
	m.LearnName(resp.Header.Get(balancer.HeaderServedBy))
	res := tryResult{label: "ok"}
	outcome := balancer.Success
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		res = tryResult{retry: idempotentOnly, label: "503"}
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:
		res = tryResult{retry: idempotentOnly, label: "5xx"}
		outcome = balancer.Failure
	case resp.StatusCode >= 500:
		res.label = "5xx"
		outcome = balancer.Failure
	}
	resp.Body = &leasedBody{ReadCloser: resp.Body, lease: lease, outcome: healthOutcome(outcome, longPoll), cancel: cancel}
	return resp, res
}

// healthOutcome is what a try tells the balancer about its member. A long
// poll tells nothing (its time is the wait it asked for), unless the member
// could not even be reached.
func healthOutcome(o balancer.Outcome, longPoll time.Duration) balancer.Outcome {
	if longPoll > 0 && o != balancer.Unreachable {
		return balancer.Dropped
	}
	return o
}

// classify turns a transport error into a result: connect errors are
// always safe to retry; anything after the request may have been sent
// only for idempotent requests.
func classify(reqCtx, tryCtx context.Context, err error) tryResult {
	switch {
	case reqCtx.Err() != nil && errors.Is(reqCtx.Err(), context.Canceled):
		return tryResult{err: err, label: "dropped"}
	case reqCtx.Err() != nil: // the overall deadline
		return tryResult{err: context.DeadlineExceeded, label: "timeout"}
	case errors.Is(context.Cause(tryCtx), errTryTimeout) || errors.Is(err, errTryTimeout):
		return tryResult{err: errTryTimeout, retry: idempotentOnly, label: "timeout"}
	case isConnectError(err):
		return tryResult{err: err, retry: alwaysRetry, label: "connect_error"}
	}
	return tryResult{err: err, retry: idempotentOnly, label: "error"}
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// mayRetry: a request the member never got can always go elsewhere; one it
// may have processed only when repeating it is harmless.
func mayRetry(req *http.Request, kind retryKind) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // the body is gone: nothing to send again
	}
	if kind == alwaysRetry {
		return true
	}
	return idempotent(req)
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

// discard drops a response that will not be used, letting its connection
// be reused when the rest is short.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// leasedBody ends the member's lease when the proxy has copied the body.
type leasedBody struct {
	io.ReadCloser
	lease   *balancer.Lease
	outcome balancer.Outcome
	cancel  context.CancelCauseFunc
}

func (b *leasedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.outcome != balancer.Dropped {
		b.outcome = balancer.Failure // the member died mid-body
	}
	return n, err
}

func (b *leasedBody) Close() error {
	err := b.ReadCloser.Close()
	b.lease.Done(b.outcome)
	b.cancel(nil)
	return err
}
