package proxy

import (
	"net/http"
	"strings"

	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/identity"
)

// Route sends every path under Prefix to Pool, after Access allows it.
type Route struct {
	Prefix string
	Pool   *balancer.Pool
	Access Access
}

// Access decides whether a caller (nil when anonymous) may make a request.
// It returns 0 to allow, else 401 or 403.
type Access func(r *http.Request, id *identity.Caller) int

// CatalogAccess: anyone reads, only admins write.
func CatalogAccess(r *http.Request, id *identity.Caller) int {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return 0
	}
	return requireRole(id, identity.Admin)
}

// OrdersAccess: every order route needs a token; the listing across all
// customers (GET /api/orders?all=true, which the orders service spells
// ?scope=all) needs an admin.
func OrdersAccess(r *http.Request, id *identity.Caller) int {
	if id == nil {
		return http.StatusUnauthorized
	}
	if r.URL.Path == "/api/orders" && asksForAll(r) {
		return requireRole(id, identity.Admin)
	}
	return 0
}

// asksForAll treats any value of "all" other than false/0, and any scope
// other than own, as asking: a spelling the orders service might read
// differently cannot slip past.
func asksForAll(r *http.Request) bool {
	q := r.URL.Query()
	for _, v := range q["all"] {
		if v != "false" && v != "0" {
			return true
		}
	}
	for _, v := range q["scope"] {
		if v != "" && v != "own" {
			return true
		}
	}
	return false
}

func requireRole(id *identity.Caller, role identity.Role) int {
	switch {
	case id == nil:
		return http.StatusUnauthorized
	case id.Role != role:
		return http.StatusForbidden
	}
	return 0
}

// matchRoute finds the route of a decoded request path. A path with a dot
// segment matches none: "/api/products/%2e%2e/%2e%2e/internal/x" decodes to
// one that names /internal/x, and a backend that cleaned it would serve
// what the gateway never routes.
func matchRoute(routes []Route, path string) *Route {
	if hasDotSegment(path) {
		return nil
	}
	for i := range routes {
		p := routes[i].Prefix
		if path == p || (strings.HasPrefix(path, p) && path[len(p)] == '/') {
			return &routes[i]
		}
	}
	return nil
}

// Template is the route template of a public path, for spans and their
// names: the resource's variable part becomes {id}, so one route is one
// name however many orders or products there are ("/api/orders/{id}").
func Template(path string) string {
	if path == DevTokenPath {
		return path
	}
	if rest, ok := strings.CutPrefix(path, "/api/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return "/api/" + rest[:i] + "/{id}"
		}
	}
	return path
}

func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
