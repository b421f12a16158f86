// Package admin is the gateway's operator API, served on a loopback-only
// port: see the pools, and add, drain and remove members at runtime.
// ReadRoutes is its read-only part, which the optional observe port serves
// off loopback too (to a console and a Prometheus in other pods).
//
//	GET    /admin/backends                             every pool, member, health, in-flight, latency
//	POST   /admin/pools/{pool}/members        {"url"}  add a member (201)
//	POST   /admin/pools/{pool}/members/drain  {"url"}  no new requests; in-flight ones finish
//	DELETE /admin/pools/{pool}/members?url=...          remove a member (204)
package admin

import (
	"encoding/json"
	"net/http"

	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/problem"
)

// Routes mounts the admin API on mux.
func Routes(mux *http.ServeMux, pools []*balancer.Pool, writeError func(http.ResponseWriter, *http.Request, error)) {
	byName := map[string]*balancer.Pool{}
	for _, p := range pools {
		byName[p.Name] = p
	}
	pool := func(w http.ResponseWriter, r *http.Request) *balancer.Pool {
		p := byName[r.PathValue("pool")]
		if p == nil {
			writeError(w, r, problem.Errorf(problem.ErrNotFound, "no pool %s", r.PathValue("pool")))
		}
		return p
	}
	memberURL := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		var in struct {
			URL string `json:"url"`
		}
		if err := httpserver.DecodeJSON(w, r, 4<<10, &in); err != nil {
			writeError(w, r, err)
			return "", false
		}
		if in.URL == "" {
			writeError(w, r, (&problem.ValidationError{}).Add("url", "required: http://host:port"))
			return "", false
		}
		return in.URL, true
	}

	ReadRoutes(mux, pools)
	// withMember runs change on the pool and member a POST names, then
	// answers with the pool's new status.
	withMember := func(status int, change func(p *balancer.Pool, raw string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			p := pool(w, r)
			if p == nil {
				return
			}
			raw, ok := memberURL(w, r)
			if !ok {
				return
			}
			if err := change(p, raw); err != nil {
				writeError(w, r, problem.Errorf(problem.ErrInvalid, "%s", err))
				return
			}
			writeJSON(w, status, p.Status())
		}
	}
	mux.HandleFunc("POST /admin/pools/{pool}/members", withMember(http.StatusCreated, func(p *balancer.Pool, raw string) error {
		_, err := p.Add(raw, balancer.SourceAdmin)
		return err
	}))
	mux.HandleFunc("POST /admin/pools/{pool}/members/drain", withMember(http.StatusOK, func(p *balancer.Pool, raw string) error {
		_, err := p.Drain(raw)
		return err
	}))
	mux.HandleFunc("DELETE /admin/pools/{pool}/members", func(w http.ResponseWriter, r *http.Request) {
		p := pool(w, r)
		if p == nil {
			return
		}
		if err := p.Remove(r.URL.Query().Get("url")); err != nil {
			writeError(w, r, problem.Errorf(problem.ErrNotFound, "%s", err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// ReadRoutes mounts the admin API's one read-only route, GET
// /admin/backends: it changes nothing, so it may be served where the
// mutating routes must not be.
func ReadRoutes(mux *http.ServeMux, pools []*balancer.Pool) {
	mux.HandleFunc("GET /admin/backends", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]balancer.PoolStatus{}
		for _, p := range pools {
			out[p.Name] = p.Status()
		}
		writeJSON(w, http.StatusOK, map[string]any{"pools": out})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
