package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/problem"
)

// ErrorWriter answers an error as problem+json stamped with the request's ids.
type ErrorWriter func(http.ResponseWriter, *http.Request, error)

// DevTokenHandler serves POST /api/auth/dev-token in dev mode:
// {"customer_id":"alice","role":"customer"} -> {"token":"<jwt>"}.
// Anyone can mint any identity here, which is why only dev mode mounts it.
func DevTokenHandler(verifier *Verifier, ttl time.Duration, writeError ErrorWriter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			CustomerID string        `json:"customer_id"`
			Role       identity.Role `json:"role"`
		}
		if err := httpserver.DecodeJSON(w, r, 4<<10, &in); err != nil {
			writeError(w, r, err)
			return
		}
		if in.Role == "" {
			in.Role = identity.Customer
		}
		invalid := &problem.ValidationError{}
		if !ValidSubject(in.CustomerID) {
			invalid.Add("customer_id", fmt.Sprintf("required: 1 to %d printable ASCII characters", identity.MaxIDLen))
		}
		if !in.Role.Valid() {
			invalid.Add("role", "must be customer or admin")
		}
		if err := invalid.OrNil(); err != nil {
			writeError(w, r, err)
			return
		}
		tok, err := verifier.Issue(identity.Caller{ID: in.CustomerID, Role: in.Role}, ttl)
		if err != nil {
			writeError(w, r, fmt.Errorf("sign a dev token: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	}
}
