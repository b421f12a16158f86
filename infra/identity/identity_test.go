package identity

import (
	"net/http"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name     string
		id, role string
		want     Caller
		ok       bool
	}{
		{"customer", "alice", "customer", Caller{"alice", Customer}, true},
		{"admin", "root", "admin", Caller{"root", Admin}, true},
		{"id without a role is a customer", "bob", "", Caller{"bob", Customer}, true},
		{"anonymous", "", "", Caller{}, false},
		{"a role without an id", "", "admin", Caller{}, false},
		{"an unknown role", "eve", "root", Caller{}, false},
		{"an id longer than the gateway passes", strings.Repeat("a", MaxIDLen+1), "customer", Caller{}, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.id != "" {
			h.Set("X-User-Id", tt.id)
		}
		if tt.role != "" {
			h.Set("X-User-Role", tt.role)
		}
		got, ok := From(h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: From = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// What the gateway strips and sets is exactly what the services read.
func TestStripThenSetRoundTrips(t *testing.T) {
	h := http.Header{}
	h.Set("X-User-Id", "mallory")
	h.Set("X-User-Role", "admin")
	Strip(h)
	if _, ok := From(h); ok {
		t.Fatalf("a client's own identity survived Strip: %v", h)
	}
	Set(h, Caller{ID: "alice", Role: Customer})
	if got, ok := From(h); !ok || got != (Caller{"alice", Customer}) || got.IsAdmin() {
		t.Fatalf("From(Set(alice)) = %+v, %v", got, ok)
	}
}
