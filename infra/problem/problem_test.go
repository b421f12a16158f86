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
