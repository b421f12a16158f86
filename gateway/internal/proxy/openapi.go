package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// OpenAPIPath is where the gateway serves the public API's OpenAPI
// document (docs/openapi.yaml), itself: it describes the gateway's surface,
// not one service's.
const OpenAPIPath = "/api/openapi.yaml"

// openAPIHandler serves doc with a strong ETag, so a client or tool that
// polls it gets 304 until the document changes.
func openAPIHandler(doc []byte) http.HandlerFunc {
	sum := sha256.Sum256(doc)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, problem.Errorf(problem.ErrMethodNotAllowed, "GET the document"))
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "public, max-age=60")
		http.ServeContent(w, r, "openapi.yaml", time.Time{}, bytes.NewReader(doc))
	}
}
