package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Horizontal scaling at runtime: `stackctl scale-out catalog` starts one
// more clone beyond the topology's, on the next free port, and registers it
// with the gateway's admin API; `stackctl scale-in catalog` drains the
// newest extra clone in the gateway, waits for its in-flight requests, removes
// it and stops it. Both go through the supervisor, which owns the process.

// scalable maps a binary to its gateway pool.
var scalable = map[string]string{"catalog": "catalog", "orders": "orders"}

// mountScale adds the scale actions to the control API. These patterns
// are more specific than /components/{name}/{action}, so they win.
func (s *supervisor) mountScale(mux *http.ServeMux, a artifacts) {
	mux.HandleFunc("POST /components/{binary}/scale-out", func(w http.ResponseWriter, r *http.Request) {
		extra, err := envOverrides(r.URL.Query()["env"])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		name, err := s.scaleOut(r.Context(), r.PathValue("binary"), a, extra)
		answer(w, err, "%s started and registered with the gateway", name)
	})
	mux.HandleFunc("POST /components/{binary}/scale-in", func(w http.ResponseWriter, r *http.Request) {
		name, err := s.scaleIn(r.Context(), r.PathValue("binary"))
		answer(w, err, "%s drained, removed from the gateway and stopped", name)
	})
}

func answer(w http.ResponseWriter, err error, format, name string) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	fmt.Fprintf(w, format+"\n", name)
}

// extraClone names clone number i of binary and gives it a port: the port
// after the topology's last clone, plus the clones in between.
type extraClone struct {
	name string
	port int
}

func (s *supervisor) extraClones(binary string) ([]extraClone, error) {
	clones := s.env.stack.Clones(binary)
	if len(clones) == 0 || scalable[binary] == "" {
		return nil, fmt.Errorf("cannot scale %q: scalable services are catalog and orders", binary)
	}
	last := 0
	for _, c := range clones {
		last = max(last, s.env.stack.Port(c.Name, "http"))
	}
	var out []extraClone
	for i := 1; i <= 8; i++ {
		out = append(out, extraClone{name: fmt.Sprintf("%s-%d", binary, len(clones)+i), port: last + i})
	}
	return out, nil
}

func (s *supervisor) running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[name]
	return p != nil && p.running()
}

func (s *supervisor) scaleOut(ctx context.Context, binary string, a artifacts, extraEnv []string) (string, error) {
	extras, err := s.extraClones(binary)
	if err != nil {
		return "", err
	}
	var clone *extraClone
	for i := range extras {
		if !s.running(extras[i].name) && portFree(extras[i].port) {
			clone = &extras[i]
			break
		}
	}
	if clone == nil {
		return "", fmt.Errorf("no free slot for another %s clone (at most %d extra)", binary, len(extras))
	}
	// The clone runs with the same settings as the topology's first one,
	// under its own name and port, plus extraEnv (a later value overrides an
	// earlier one).
	addr := "127.0.0.1:" + strconv.Itoa(clone.port)
	env := append(s.env.serviceEnv(s.env.stack.Clones(binary)[0]), "SERVICE_INSTANCE_ID="+clone.name, "HTTP_ADDR="+addr)
	env = append(env, extraEnv...)
	s.env.say("scaling out: starting %s on %s%s", clone.name, addr, withEnv(extraEnv))
	p, err := s.env.start(clone.name, procSpec{path: filepath.Join(a.binDir, binary), env: env}, s.echo)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.procs[clone.name] = p
	s.mu.Unlock()
	s.watchOne(context.WithoutCancel(ctx), p)
	if err := s.env.waitReady(ctx, p, 90*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, "http://"+addr+"/readyz")
	}); err != nil {
		_ = p.stop(10 * time.Second)
		return "", err
	}
	if err := s.env.gatewayAdmin(ctx, http.MethodPost, "/admin/pools/"+scalable[binary]+"/members", "http://"+addr); err != nil {
		_ = p.stop(10 * time.Second)
		return "", fmt.Errorf("%s is ready but the gateway did not take it: %w", clone.name, err)
	}
	s.scrapeClone(binary, clone.name, clone.port, false)
	return clone.name, nil
}

func (s *supervisor) scaleIn(ctx context.Context, binary string) (string, error) {
	extras, err := s.extraClones(binary)
	if err != nil {
		return "", err
	}
	var clone *extraClone
	for i := len(extras) - 1; i >= 0; i-- {
		if s.running(extras[i].name) {
			clone = &extras[i]
			break
		}
	}
	if clone == nil {
		return "", fmt.Errorf("no extra %s clone runs; scale-in stops only clones that scale-out started", binary)
	}
	pool, member := scalable[binary], "http://127.0.0.1:"+strconv.Itoa(clone.port)
	s.env.say("scaling in: draining %s in the gateway", clone.name)
	if err := s.env.gatewayAdmin(ctx, http.MethodPost, "/admin/pools/"+pool+"/members/drain", member); err != nil {
		return "", err
	}
	// In-flight requests finish before the process goes away.
	if err := s.env.waitReady(ctx, nil, 30*time.Second, func(ctx context.Context) error {
		return s.env.memberIdle(ctx, pool, member)
	}); err != nil {
		s.env.say("%s still has requests in flight after 30s; stopping it anyway: %v", clone.name, err)
	}
	if err := s.env.gatewayAdmin(ctx, http.MethodDelete, "/admin/pools/"+pool+"/members?url="+url.QueryEscape(member), ""); err != nil {
		return "", err
	}
	if err := s.stopOne(clone.name, false); err != nil {
		return "", err
	}
	s.scrapeClone(binary, clone.name, clone.port, true)
	return clone.name, nil
}

// stopExtras stops clones that scale-out started; the topology's own
// components are stopped by stopAll.
func (s *supervisor) stopExtras() {
	s.mu.Lock()
	var extras []*process
	for name, p := range s.procs {
		if _, inTopology := s.env.stack.Get(name); !inTopology {
			extras = append(extras, p)
		}
	}
	s.mu.Unlock()
	for _, p := range extras {
		if err := p.stop(30 * time.Second); err != nil {
			s.env.say("%v", err)
		}
	}
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// gatewayAdmin calls the gateway's admin API; member, when set, is sent
// as {"url": member}, and the answer is decoded into out when it is given.
func (e *environment) gatewayAdmin(ctx context.Context, method, path, member string, out ...any) error {
	var body bytes.Buffer
	if member != "" {
		_ = json.NewEncoder(&body).Encode(map[string]string{"url": member})
	}
	req, err := http.NewRequestWithContext(ctx, method, e.endpoints().GatewayAdminURL+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gateway admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return fmt.Errorf("gateway admin %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(buf.String()))
	}
	for _, v := range out {
		return json.NewDecoder(resp.Body).Decode(v)
	}
	return nil
}

// memberIdle succeeds once the gateway reports no request in flight to member.
func (e *environment) memberIdle(ctx context.Context, pool, member string) error {
	var out struct {
		Pools map[string]struct {
			Members []struct {
				URL      string `json:"url"`
				InFlight int64  `json:"in_flight"`
			} `json:"members"`
		} `json:"pools"`
	}
	if err := e.gatewayAdmin(ctx, http.MethodGet, "/admin/backends", "", &out); err != nil {
		return err
	}
	for _, m := range out.Pools[pool].Members {
		if m.URL == member && m.InFlight > 0 {
			return fmt.Errorf("%d requests in flight", m.InFlight)
		}
	}
	return nil
}
