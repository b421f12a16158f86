// Package auth verifies the HS256 JWTs the gateway accepts and issues the
// dev-mode tokens. Services behind the gateway never see a token: they read
// the caller the gateway states in the headers of infra/identity.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/scaleshop/scaleshop/infra/identity"
)

// DevSigningKey is the documented key of dev mode; the gateway refuses to
// start with it in any other mode.
const DevSigningKey = "scaleshop-dev-signing-key-not-for-production"

// ErrInvalidToken covers every way a token can be bad; the reason is in
// the wrapped message, never sent to the client.
var ErrInvalidToken = errors.New("invalid token")

type claims struct {
	jwt.RegisteredClaims
	Role identity.Role `json:"role"`
}

// Verifier checks tokens signed with one HMAC key.
type Verifier struct {
	key    []byte
	parser *jwt.Parser
	now    func() time.Time
	// verified remembers the tokens that passed, until they expire: a
	// client sends the same token with every request, and parsing it
	// (base64, JSON, HMAC) was 8.6 % of the gateway's CPU at 300 orders/s.
	// Only a token that verified is kept, under its whole text, so a hit
	// proves what a parse would; a bad token is parsed every time.
	verified *lru.Cache[string, verifiedToken]
}

type verifiedToken struct {
	caller identity.Caller
	until  time.Time // exp plus the leeway: the parser's own bound
}

// leeway is the clock skew allowed on exp, and verifiedTokens how many
// tokens the verifier remembers (a few hundred bytes each).
const (
	leeway         = 5 * time.Second
	verifiedTokens = 4096
)

// NewVerifier pins the algorithm to HS256 (so "none" and RS/ES tricks are
// rejected) and requires exp.
func NewVerifier(key []byte) *Verifier {
	verified, err := lru.New[string, verifiedToken](verifiedTokens)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	v := &Verifier{key: key, now: time.Now, verified: verified}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Verify returns the caller in a valid token: one the identity contract
// can carry downstream (a printable sub of at most identity.MaxIDLen bytes,
// a known role).
func (v *Verifier) Verify(token string) (identity.Caller, error) {
	if t, ok := v.verified.Get(token); ok {
		if v.now().Before(t.until) {
			return t.caller, nil
		}
		v.verified.Remove(token)
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return identity.Caller{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !ValidSubject(c.Subject) {
		return identity.Caller{}, fmt.Errorf("%w: sub missing, too long or not printable", ErrInvalidToken)
	}
	if !c.Role.Valid() {
		return identity.Caller{}, fmt.Errorf("%w: role %q", ErrInvalidToken, c.Role)
	}
	caller := identity.Caller{ID: c.Subject, Role: c.Role}
	v.verified.Add(token, verifiedToken{caller: caller, until: c.ExpiresAt.Add(leeway)})
	return caller, nil
}

// ValidSubject reports whether sub can be a caller's id: 1 to
// identity.MaxIDLen printable ASCII characters, safe in headers and logs.
func ValidSubject(sub string) bool {
	if sub == "" || len(sub) > identity.MaxIDLen {
		return false
	}
	for _, c := range sub {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// Issue signs a token for id that expires after ttl.
func (v *Verifier) Issue(id identity.Caller, ttl time.Duration) (string, error) {
	now := v.now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.ID,
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
