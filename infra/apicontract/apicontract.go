// Package apicontract holds the code to the public API's contract,
// docs/openapi.yaml (OpenAPI 3.1): it lists the operations the document
// promises, so a test can compare them with the routes the code serves, and
// checks a real response against the document's schemas, statuses and
// headers, so the end-to-end tests prove the answers are what it says.
//
// The validator is kin-openapi, whose OpenAPI 3.1 support validates schemas
// as JSON Schema 2020-12 (through santhosh-tekuri/jsonschema).
package apicontract

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/scaleshop/scaleshop/docs"
)

// Contract is the loaded, validated document.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
}

// Load parses docs/openapi.yaml and validates it as an OpenAPI 3.1
// document (refs resolve, schemas compile, examples fit).
func Load() (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		return nil, fmt.Errorf("docs/openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	// The document names the default local server; a test stack runs on
	// other ports, so responses are matched by path alone.
	routing := *doc
	routing.Servers = nil
	router, err := legacy.NewRouter(&routing)
	if err != nil {
		return nil, err
	}
	return &Contract{doc: doc, router: router}, nil
}

// Operation is one documented method and path template.
type Operation struct {
	Method string // GET, POST, ...
	Path   string // /api/products/{id}
}

func (o Operation) String() string { return o.Method + " " + o.Path }

// Operations lists every documented operation, sorted.
func (c *Contract) Operations() []Operation {
	var ops []Operation
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, Operation{Method: strings.ToUpper(method), Path: path})
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.String(), b.String()) })
	return ops
}

// Check validates one real answer to req: its status must be documented
// for the operation, its documented required headers present, and its body
// must fit the schema of its status and media type.
func (c *Contract) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s is not in docs/openapi.yaml: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, // an undocumented status is a failure
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s answered %d against docs/openapi.yaml: %w\nbody: %.500s", req.Method, req.URL.RequestURI(), status, err, body)
	}
	return nil
}

// Compare holds the routes a service serves to the document: served are
// its routes (gin's "/api/products/:id" or "{id}" both read as a parameter);
// only those under prefix count, since a service's other routes (probes,
// /internal/*) are not public. It returns the served routes the document
// lacks and the documented ones under prefix that the service does not
// serve.
func (c *Contract) Compare(prefix string, served []Operation) (undocumented, unserved []Operation) {
	under := func(path string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	shape := func(op Operation) string {
		segs := strings.Split(op.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")) {
				segs[i] = "{}"
			}
		}
		return op.Method + " " + strings.Join(segs, "/")
	}
	documented := map[string]bool{}
	for _, op := range c.Operations() {
		if under(op.Path) {
			documented[shape(op)] = true
		}
	}
	serves := map[string]bool{}
	for _, op := range served {
		if !under(op.Path) {
			continue
		}
		serves[shape(op)] = true
		if !documented[shape(op)] {
			undocumented = append(undocumented, op)
		}
	}
	for _, op := range c.Operations() {
		if under(op.Path) && !serves[shape(op)] {
			unserved = append(unserved, op)
		}
	}
	return undocumented, unserved
}
