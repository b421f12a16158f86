// Package problem is the one place where an error becomes an HTTP status and
// an RFC 9457 application/problem+json body.
//
// Layers below HTTP wrap one of the category errors (ErrNotFound, ErrInvalid,
// ...) with %w, or phrase one for the client with Errorf; the table in
// statusOf maps a category to a status. A 5xx body never carries the
// underlying error text: it is logged once, by the caller, and the client
// gets the trace id to find it, plus only what Errorf wrote for it.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ContentType is the media type RFC 9457 defines.
const ContentType = "application/problem+json"

// Error categories. Wrap them with fmt.Errorf("...: %w", problem.ErrNotFound).
var (
	ErrInvalid            = errors.New("invalid request")
	ErrUnauthorized       = errors.New("unauthorized")
	ErrForbidden          = errors.New("forbidden")
	ErrNotFound           = errors.New("not found")
	ErrConflict           = errors.New("conflict")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrUnprocessable      = errors.New("unprocessable")
	ErrTooLarge           = errors.New("request too large")
	ErrRateLimited        = errors.New("rate limited")
	ErrUnavailable        = errors.New("temporarily unavailable")
	// The gateway's own categories: no route, a method a route does not
	// take, and a backend that failed or did not answer in time.
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrBadGateway       = errors.New("bad gateway")
	ErrGatewayTimeout   = errors.New("gateway timeout")
)

// statusOf is the single table from error category to HTTP status.
var statusOf = []struct {
	category error
	status   int
}{
	{ErrInvalid, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrConflict, http.StatusConflict},
	{ErrPreconditionFailed, http.StatusPreconditionFailed},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnprocessable, http.StatusUnprocessableEntity},
	{ErrRateLimited, http.StatusTooManyRequests},
	{ErrUnavailable, http.StatusServiceUnavailable},
	{ErrBadGateway, http.StatusBadGateway},
	{ErrGatewayTimeout, http.StatusGatewayTimeout},
}

// DefaultRetryAfter is the Retry-After (seconds) of a 503 that names none:
// every 503 tells the client when to come back, so none retries in a loop.
const DefaultRetryAfter = 1

// Errorf returns an error of category whose whole text is written for the
// client. From uses it as the detail, of a 5xx too, where any other text
// is hidden; wrapping it (fmt.Errorf("shard 3: %w", ...)) adds context for
// the log that a 5xx body does not show.
func Errorf(category error, format string, args ...any) error {
	return &phrased{category: category, text: fmt.Sprintf(format, args...)}
}

type phrased struct {
	category error
	text     string
}

func (p *phrased) Error() string { return p.text }
func (p *phrased) Unwrap() error { return p.category }

// FieldError names one invalid input field.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ValidationError carries every bad field of one request; it is ErrInvalid.
type ValidationError struct{ Fields []FieldError }

func (v *ValidationError) Error() string {
	if len(v.Fields) == 0 {
		return "invalid request"
	}
	return "invalid " + v.Fields[0].Field + ": " + v.Fields[0].Detail
}

// Unwrap makes errors.Is(v, ErrInvalid) true.
func (v *ValidationError) Unwrap() error { return ErrInvalid }

// Add records a bad field; it returns v for chaining.
func (v *ValidationError) Add(field, detail string) *ValidationError {
	v.Fields = append(v.Fields, FieldError{Field: field, Detail: detail})
	return v
}

// OrNil returns v when it holds a field error, else nil.
func (v *ValidationError) OrNil() error {
	if len(v.Fields) == 0 {
		return nil
	}
	return v
}

// Details is an RFC 9457 problem document.
type Details struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	TraceID  string       `json:"trace_id,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RetryAfter, when set, becomes the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

// Status returns the HTTP status for err: 500 when it has no category.
func Status(err error) int {
	for _, row := range statusOf {
		if errors.Is(err, row.category) {
			return row.status
		}
	}
	return http.StatusInternalServerError
}

// From builds the problem document for err. Its detail is the text that
// Errorf wrote for the client when err holds one; otherwise a 4xx shows its
// message and a 5xx says what the client can do, never what broke inside.
func From(err error) Details {
	status := Status(err)
	d := Details{Type: "about:blank", Title: http.StatusText(status), Status: status}
	if p, ok := errors.AsType[*phrased](err); ok {
		d.Detail = p.text
	} else if status < 500 {
		d.Detail = err.Error()
	}
	var v *ValidationError
	if errors.As(err, &v) {
		d.Errors = v.Fields
		d.Detail = "one or more fields are invalid"
	}
	var ra interface{ RetryAfterSeconds() int }
	if errors.As(err, &ra) {
		d.RetryAfter = ra.RetryAfterSeconds()
	}
	if status == http.StatusServiceUnavailable {
		if d.Detail == "" {
			d.Detail = "a dependency is unavailable; retry later"
		}
		if d.RetryAfter == 0 {
			d.RetryAfter = DefaultRetryAfter
		}
	}
	return d
}

// Write sends d as problem+json.
func Write(w http.ResponseWriter, d Details) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// RetryAfter wraps err (normally ErrUnavailable or ErrRateLimited) with the
// number of seconds a client should wait.
func RetryAfter(err error, seconds int) error { return retryAfter{err, seconds} }

type retryAfter struct {
	error
	seconds int
}

func (r retryAfter) Unwrap() error          { return r.error }
func (r retryAfter) RetryAfterSeconds() int { return r.seconds }
