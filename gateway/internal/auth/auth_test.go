package auth

import (
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/scaleshop/scaleshop/infra/identity"
)

var key = []byte("test-key-test-key-test-key-test-key")

func sign(t *testing.T, method jwt.SigningMethod, k any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	v := NewVerifier(key)
	exp := time.Now().Add(time.Hour).Unix()
	good := jwt.MapClaims{"sub": "alice", "role": "customer", "exp": exp}
	with := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	unsigned := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		token string
		want  *identity.Caller
	}{
		{"valid customer", sign(t, jwt.SigningMethodHS256, key, good), &identity.Caller{ID: "alice", Role: identity.Customer}},
		{"valid admin", sign(t, jwt.SigningMethodHS256, key, with("role", "admin")), &identity.Caller{ID: "alice", Role: identity.Admin}},
		{"expired", sign(t, jwt.SigningMethodHS256, key, with("exp", time.Now().Add(-time.Minute).Unix())), nil},
		{"no exp", sign(t, jwt.SigningMethodHS256, key, with("exp", nil)), nil},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-k"), good), nil},
		{"alg none", unsigned(good), nil},
		{"alg HS512", sign(t, jwt.SigningMethodHS512, key, good), nil},
		{"missing sub", sign(t, jwt.SigningMethodHS256, key, with("sub", nil)), nil},
		{"empty sub", sign(t, jwt.SigningMethodHS256, key, with("sub", "")), nil},
		{"sub longer than the identity headers carry", sign(t, jwt.SigningMethodHS256, key, with("sub", strings.Repeat("a", identity.MaxIDLen+1))), nil},
		{"sub with a line break", sign(t, jwt.SigningMethodHS256, key, with("sub", "alice\r\nX-User-Role: admin")), nil},
		{"unknown role", sign(t, jwt.SigningMethodHS256, key, with("role", "root")), nil},
		{"missing role", sign(t, jwt.SigningMethodHS256, key, with("role", nil)), nil},
		{"garbage", "not.a.jwt", nil},
		{"tampered payload", tamper(sign(t, jwt.SigningMethodHS256, key, good)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.token)
			if tc.want == nil {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("want ErrInvalidToken, got %v (identity %+v)", err, id)
				}
				return
			}
			if err != nil || id != *tc.want {
				t.Fatalf("got %+v, %v; want %+v", id, err, *tc.want)
			}
		})
	}
}

// tamper makes the payload say admin while keeping the customer's signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "customer", "admin\"", 1)))
	return strings.Join(parts, ".")
}

func TestIssueRoundTrips(t *testing.T) {
	v := NewVerifier(key)
	tok, err := v.Issue(identity.Caller{ID: "bob", Role: identity.Admin}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(tok); err != nil || id != (identity.Caller{ID: "bob", Role: identity.Admin}) {
		t.Fatalf("got %+v, %v", id, err)
	}
	v.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("a token past its ttl verified")
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header           string
		token            string
		present, invalid bool
	}{
		{"", "", false, false},
		{"Bearer abc", "abc", true, false},
		{"bearer abc", "abc", true, false},
		{"Basic dXNlcjpwdw==", "", true, true},
		{"Bearer ", "", true, true},
		{"Bearer", "", true, true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		tok, present, err := BearerToken(r)
		if tok != tc.token || present != tc.present || (err != nil) != tc.invalid {
			t.Errorf("%q: got %q %v %v", tc.header, tok, present, err)
		}
	}
}

// TestARememberedTokenStillExpires: the verifier remembers a token that
// passed, but a hit must not outlive the token: past its exp (and the
// leeway) it is refused as a parse would refuse it.
func TestARememberedTokenStillExpires(t *testing.T) {
	v := NewVerifier(key)
	now := time.Now()
	v.now = func() time.Time { return now }
	tok := aliceToken(t, v, time.Minute)
	for range 2 { // the second is a hit
		if id, err := v.Verify(tok); err != nil || id.ID != "alice" {
			t.Fatalf("fresh token: %+v, %v", id, err)
		}
	}
	now = now.Add(time.Minute + leeway + time.Second)
	if id, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a remembered token past its exp: %+v, %v; want ErrInvalidToken", id, err)
	}
}

// TestRememberingAGoodTokenAdmitsNoNeighbour: once a token is remembered,
// a tampered copy of it is still parsed, and refused.
func TestRememberingAGoodTokenAdmitsNoNeighbour(t *testing.T) {
	v := NewVerifier(key)
	tok := aliceToken(t, v, time.Hour)
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(tamper(tok)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered copy of a remembered token: %+v, %v", id, err)
	}
}

// BenchmarkVerify is a client's second and later requests (the token
// remembered) beside its first (parsed and checked): the ratio is what
// remembering saves a request.
func BenchmarkVerify(b *testing.B) {
	v := NewVerifier(key)
	tok := aliceToken(b, v, time.Hour)
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed", func(b *testing.B) {
		for b.Loop() {
			v.verified.Purge()
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// aliceToken is a customer's token from v, valid for ttl.
func aliceToken(tb testing.TB, v *Verifier, ttl time.Duration) string {
	tb.Helper()
	tok, err := v.Issue(identity.Caller{ID: "alice", Role: identity.Customer}, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
