package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatusTable(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("product 7: %w", ErrNotFound), 404},
		{fmt.Errorf("sku taken: %w", ErrConflict), 409},
		{(&ValidationError{}).Add("name", "required"), 400},
		{fmt.Errorf("primary: %w", ErrUnavailable), 503},
		{errors.New("pq: connection reset"), 500},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestFromHidesInternalErrors(t *testing.T) {
	d := From(errors.New("dial tcp 127.0.0.1:5433: connection refused"))
	if d.Status != 500 || strings.Contains(d.Detail, "5433") {
		t.Fatalf("internal error leaked: %+v", d)
	}
}

func TestWriteValidationProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	err := (&ValidationError{}).Add("price_cents", "must be >= 0").Add("name", "required")
	Write(rec, From(err))

	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("content type %q", ct)
	}
	var body Details
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != http.StatusBadRequest || len(body.Errors) != 2 || body.Errors[1].Field != "name" {
		t.Fatalf("body %+v", body)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, From(RetryAfter(fmt.Errorf("shard 3 backlog: %w", ErrUnavailable), 2)))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("code %d retry-after %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestErrorfIsTheClientsText(t *testing.T) {
	driver := errors.New(`ERROR: duplicate key value violates unique constraint "products_sku_key" (SQLSTATE 23505)`)
	tests := []struct {
		name   string
		err    error
		status int
		detail string
	}{
		{"a 4xx wrapped around driver text shows only the phrase",
			fmt.Errorf("create: %w", fmt.Errorf("%w: %w", Errorf(ErrConflict, "sku %q is taken", "a-1"), driver)),
			409, `sku "a-1" is taken`},
		{"a 5xx shows its phrase, not its context",
			fmt.Errorf("pool catalog, member 127.0.0.1:8081: %w", Errorf(ErrBadGateway, "the catalog service did not answer")),
			502, "the catalog service did not answer"},
		{"a 5xx without a phrase hides everything",
			fmt.Errorf("dial 127.0.0.1:5433: %w", ErrUnavailable),
			503, "a dependency is unavailable; retry later"},
	}
	for _, tt := range tests {
		d := From(tt.err)
		if d.Status != tt.status || d.Detail != tt.detail {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, d.Status, d.Detail, tt.status, tt.detail)
		}
	}
}

func TestEvery503SaysWhenToRetry(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("primary: %w", ErrUnavailable),
		Errorf(ErrUnavailable, "no healthy catalog instance; retry later"),
	} {
		rec := httptest.NewRecorder()
		Write(rec, From(err))
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: code %d, Retry-After %q", err, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	rec := httptest.NewRecorder()
	Write(rec, From(RetryAfter(Errorf(ErrRateLimited, "slow down"), 7)))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "7" {
		t.Errorf("rate limited: code %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}
