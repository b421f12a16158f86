// Package auth verifies the HS256 JWTs the gateway accepts and issues the
// dev-mode tokens. Services behind the gateway never see a token: they read
// the identity the gateway puts in X-User-Id and X-User-Role.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The identity headers the gateway sets downstream after deleting any a
// client sent.
const (
	HeaderUserID   = "X-User-Id"
	HeaderUserRole = "X-User-Role"
)

// DevSigningKey is the documented key of dev mode; the gateway refuses to
// start with it in any other mode.
const DevSigningKey = "scaleshop-dev-signing-key-not-for-production"

// Role is what a caller may do.
type Role string

// The roles.
const (
	Customer Role = "customer"
	Admin    Role = "admin"
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return r == Customer || r == Admin }

// Identity is a verified caller.
type Identity struct {
	Subject string // the customer id
	Role    Role
}

// ErrInvalidToken covers every way a token can be bad; the reason is in
// the wrapped message, never sent to the client.
var ErrInvalidToken = errors.New("invalid token")

type claims struct {
	jwt.RegisteredClaims
	Role Role `json:"role"`
}

// Verifier checks tokens signed with one HMAC key.
type Verifier struct {
	key    []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewVerifier pins the algorithm to HS256 (so "none" and RS/ES tricks are
// rejected) and requires exp.
func NewVerifier(key []byte) *Verifier {
	v := &Verifier{key: key, now: time.Now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Verify returns the identity in a valid token.
func (v *Verifier) Verify(token string) (Identity, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no sub", ErrInvalidToken)
	}
	if !ValidRole(c.Role) {
		return Identity{}, fmt.Errorf("%w: role %q", ErrInvalidToken, c.Role)
	}
	return Identity{Subject: c.Subject, Role: c.Role}, nil
}

// Issue signs a token for id that expires after ttl.
func (v *Verifier) Issue(id Identity, ttl time.Duration) (string, error) {
	now := v.now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role: id.Role,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(v.key)
}

// BearerToken returns the token of an "Authorization: Bearer" header;
// present is false when the request has no Authorization header at all.
func BearerToken(r *http.Request) (token string, present bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, fmt.Errorf("%w: Authorization is not a Bearer token", ErrInvalidToken)
	}
	return strings.TrimSpace(tok), true, nil
}
