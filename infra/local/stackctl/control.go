package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"syscall"
	"time"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// The supervisor answers on a unix socket in its state directory, so drills
// and tests can stop, kill and start single components of a running stack
// ("break things on purpose") while it keeps logging and supervising them.

func (e *environment) controlSocket() string { return stackcontrol.Socket(e.stateDir) }

// serveControl runs the control API until ctx ends.
func (s *supervisor) serveControl(ctx context.Context, a artifacts) error {
	path := s.env.controlSocket()
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	s.mountScale(mux, a)
	mux.HandleFunc("POST /components/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		c, ok := s.env.stack.Get(name)
		if !ok && (action == "stop" || action == "kill") && s.known(name) {
			// A clone scale-out started: not in the topology, but this
			// supervisor owns its process.
			c, ok = topology.Component{Name: name, Kind: topology.Service}, true
		}
		if !ok {
			http.Error(w, "no component "+name, http.StatusNotFound)
			return
		}
		opts, err := startOverrides(r)
		if err == nil && len(opts.env) > 0 && (action != "start" || c.Kind != topology.Service) {
			err = fmt.Errorf("env overrides apply to starting a service, not to %s %s", action, name)
		}
		if err == nil && opts.cpus != nil && (action != "start" || topology.CPUsEnv(c.Binary) == "") {
			err = fmt.Errorf("a CPU quota applies to starting a catalog, orders or worker clone, not to %s %s", action, name)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch action {
		case "stop":
			err = s.stopOne(name, false)
		case "kill":
			err = s.stopOne(name, true)
		case "start":
			err = s.startOne(r.Context(), c, a, opts)
		case "pause-replay", "resume-replay":
			err = s.replay(r.Context(), c, action == "pause-replay")
		default:
			http.Error(w, "unknown action "+action, http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		fmt.Fprintf(w, "%s: %s done\n", name, action)
	})
	mux.HandleFunc("GET /components", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]bool{}
		s.mu.Lock()
		for name, p := range s.procs {
			out[name] = p.running()
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// known reports whether the supervisor started a process of that name.
func (s *supervisor) known(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[name] != nil
}

func (s *supervisor) stopOne(name string, kill bool) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil || !p.running() {
		return fmt.Errorf("%s is not running", name)
	}
	if kill {
		s.env.say("killing %s (SIGKILL), on request", name)
		p.mu.Lock()
		p.stopping = true
		p.mu.Unlock()
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return nil
	}
	s.env.say("stopping %s, on request", name)
	return p.stop(30 * time.Second)
}

// replay pauses or resumes WAL replay on the catalog replica: the replica
// stays up and answers reads, but its lag grows until replay resumes, which
// is how the read path's lag bound and read-your-writes are shown on demand.
func (s *supervisor) replay(ctx context.Context, c topology.Component, pause bool) error {
	if c.Name != topology.PGCatalogReplica {
		return fmt.Errorf("%s is not a replica; replay is paused on %s", c.Name, topology.PGCatalogReplica)
	}
	if !s.running(c.Name) {
		return fmt.Errorf("%s is not running", c.Name)
	}
	stmt := "SELECT pg_wal_replay_resume()"
	if pause {
		stmt = "SELECT pg_wal_replay_pause()"
	}
	s.env.say("%s on %s, on request", stmt, c.Name)
	return s.env.sql(ctx, c.Name, "postgres", stmt)
}

// startOverrides reads what a control request changes for one start:
// ?env=K=V (repeatable), the extra environment, and ?cpus=N, the CPU quota.
func startOverrides(r *http.Request) (startOptions, error) {
	q := r.URL.Query()
	o := startOptions{env: q["env"]}
	for _, kv := range o.env {
		if !envPair.MatchString(kv) {
			return startOptions{}, fmt.Errorf("env %q: want NAME=value", kv)
		}
	}
	if v := q.Get("cpus"); v != "" {
		cores, err := cpuquota.ParseCores(v)
		if err != nil {
			return startOptions{}, fmt.Errorf("cpus=%w", err)
		}
		o.cpus = &cores
	}
	return o, nil
}

var envPair = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func (s *supervisor) startOne(ctx context.Context, c topology.Component, a artifacts, o startOptions) error {
	s.mu.Lock()
	p := s.procs[c.Name]
	s.mu.Unlock()
	if p != nil && p.running() {
		return fmt.Errorf("%s is already running", c.Name)
	}
	if c.Kind == topology.Service {
		// Picks up code changed since the stack started: stop + start is
		// the edit-run loop for one service.
		if err := s.env.buildServices(ctx, a.binDir, c.Binary); err != nil {
			return err
		}
	}
	if err := s.launch(ctx, c, a, o); err != nil {
		return err
	}
	s.mu.Lock()
	p = s.procs[c.Name]
	s.mu.Unlock()
	// Not the request's ctx: that ends with this response, the process does not.
	s.watchOne(context.WithoutCancel(ctx), p)
	return nil
}

// control sends one action to the running supervisor of this profile;
// o (extra environment, a CPU quota) applies to start and scale-out, for
// that start only.
func (e *environment) control(action, name string, o stackcontrol.Options) error {
	answer, err := stackcontrol.Do(context.Background(), e.stateDir, action, name, o)
	if errors.Is(err, stackcontrol.ErrNoSupervisor) {
		return fmt.Errorf("%w (is the %s stack running? start it with `make up`)", err, e.profile)
	}
	if err != nil {
		return err
	}
	e.say("%s", answer)
	return nil
}
