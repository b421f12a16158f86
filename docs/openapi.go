// Package docs holds the one copy of the public API's contract,
// openapi.yaml, beside the pages that explain it. The gateway embeds it
// from here and serves it at /api/openapi.yaml, and the contract tests
// (infra/apicontract) read the same bytes, so the document served, the
// document tested and the document in the repository are one file; no
// copy or generate step can fall behind.
package docs

import _ "embed"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the public API (YAML).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
