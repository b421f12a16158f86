// Package identity is the contract between the gateway and the services
// behind it. The gateway verifies the caller's bearer token, deletes any
// identity headers the client sent, and states the verified caller in two
// headers; a service trusts those headers because only the gateway reaches
// it (services listen on loopback, behind the gateway). The names and the
// roles live here once, so the gateway and every service read one
// definition.
package identity

import "net/http"

// The headers the gateway sets after it verified a token.
const (
	HeaderID   = "X-User-Id"
	HeaderRole = "X-User-Role"
)

// MaxIDLen bounds a customer id, so one is safe in headers, keys and logs.
const MaxIDLen = 64

// Role is what a caller may do.
type Role string

// The roles.
const (
	Customer Role = "customer"
	Admin    Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Customer || r == Admin }

// Caller is a verified caller.
type Caller struct {
	ID   string // the customer id (the token's sub)
	Role Role
}

// IsAdmin reports whether the caller may act on every customer's data.
func (c Caller) IsAdmin() bool { return c.Role == Admin }

// Strip deletes whatever identity a client claimed for itself: only the
// token decides who the caller is.
func Strip(h http.Header) {
	h.Del(HeaderID)
	h.Del(HeaderRole)
}

// Set states c for the service downstream.
func Set(h http.Header, c Caller) {
	h.Set(HeaderID, c.ID)
	h.Set(HeaderRole, string(c.Role))
}

// From reads the caller the gateway stated; ok is false for an anonymous
// request and for headers the gateway would never have written (an id too
// long, an unknown role). A request with an id and no role is a customer.
func From(h http.Header) (c Caller, ok bool) {
	c = Caller{ID: h.Get(HeaderID), Role: Role(h.Get(HeaderRole))}
	if c.Role == "" {
		c.Role = Customer
	}
	if c.ID == "" || len(c.ID) > MaxIDLen || !c.Role.Valid() {
		return Caller{}, false
	}
	return c, true
}
