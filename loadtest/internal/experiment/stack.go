// Package experiment compares configurations of the running stack under the
// same load and reports the ratio: one experiment per seed concept (cache,
// clones, vertical scaling, the latency/throughput knee, availability under
// failures). It drives the native stack through its own supervisor's
// control socket (stop, kill, start, scale-out, scale-in) and, where a
// setting must differ, through an extra catalog process started from the
// stack's own binary with that setting.
package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/scrape"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// Stack is the running stack the experiments act on.
type Stack struct {
	M   *topology.Manifest
	Log io.Writer
}

// Control sends one action to the stack's supervisor: stop, kill, start
// (component name) or scale-out, scale-in (binary name).
func (s *Stack) Control(ctx context.Context, action, name string) error {
	return s.ControlEnv(ctx, action, name, nil)
}

// ControlEnv is Control for start and scale-out with env on top of the
// service's usual environment, for that start only.
func (s *Stack) ControlEnv(ctx context.Context, action, name string, env map[string]string) error {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		kv = append(kv, k+"="+env[k])
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	answer, err := stackcontrol.Send(ctx, s.M.StateDir, action, name, kv...)
	if err != nil {
		return fmt.Errorf("stack control: %w", err)
	}
	fmt.Fprintf(s.Log, "  stack: %s\n", answer)
	return nil
}

// WaitServing waits until the gateway's pool routes to exactly n members
// (up, healthy, neither ejected nor draining): a clone just started is not
// in rotation until the gateway's health checks have seen it.
func (s *Stack) WaitServing(ctx context.Context, pool string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.serving(ctx, pool)
		if err == nil && got == n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the gateway's %s pool routes to %d members, want %d (%v)", pool, got, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Stack) serving(ctx context.Context, pool string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.M.Endpoints.GatewayAdminURL+"/admin/backends", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Pools map[string]struct {
			Members []struct {
				State    string `json:"state"`
				Healthy  bool   `json:"healthy"`
				Ejected  bool   `json:"ejected"`
				Draining bool   `json:"draining"`
			} `json:"members"`
		} `json:"pools"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("gateway /admin/backends: %w", err)
	}
	n := 0
	for _, m := range out.Pools[pool].Members {
		if m.State == "up" && m.Healthy && !m.Ejected && !m.Draining {
			n++
		}
	}
	return n, nil
}

// CatalogClones names the topology's catalog clones and their URLs.
func (s *Stack) CatalogClones() (names, urls []string) {
	for _, c := range s.M.Components {
		if c.Kind == topology.Service && strings.HasPrefix(c.Name, "catalog-") && c.Ports["http"] > 0 {
			names = append(names, c.Name)
			urls = append(urls, "http://127.0.0.1:"+strconv.Itoa(c.Ports["http"]))
		}
	}
	return names, urls
}

// CheckLimit fails unless the process at base reports the capacity limit
// want (http_server_concurrency_limit): a clone that ignored its setting
// would make a capacity experiment measure something else.
func CheckLimit(ctx context.Context, base string, want int) error {
	v, err := metricValue(ctx, base, "http_server_concurrency_limit")
	if err != nil {
		return err
	}
	if int(v) != want {
		return fmt.Errorf("%s runs with a concurrency limit of %v, want %d: see its log", base, v, want)
	}
	return nil
}

// metricValue reads one unlabelled gauge (or counter) from base's /metrics.
func metricValue(ctx context.Context, base, name string) (float64, error) {
	families, err := scrape.Get(ctx, http.DefaultClient, base)
	if err != nil {
		return 0, err
	}
	v, ok := families.Sum(name, nil)
	if !ok {
		return 0, fmt.Errorf("%s/metrics has no %s (a process older than the capacity limit?)", base, name)
	}
	return v, nil
}

// Catalog is an extra catalog process with its own settings, outside the
// gateway's pools: the experiments load it directly.
type Catalog struct {
	URL string
	cmd *exec.Cmd
	log *os.File
}

// StartCatalog starts the stack's catalog binary on a free loopback port
// with the stack's databases and memcached, plus env on top (for example
// CATALOG_CACHE_ENABLED=false or GOMAXPROCS=1), and waits until it is ready.
func (s *Stack) StartCatalog(ctx context.Context, name string, env map[string]string) (*Catalog, error) {
	bin := filepath.Join(s.M.StateDir, "bin", "catalog")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the stack's catalog binary: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	ep := s.M.Endpoints
	set := map[string]string{
		"HTTP_ADDR":                   addr,
		"SERVICE_INSTANCE_ID":         name,
		"OTEL_SERVICE_NAME":           "catalog",
		"OTEL_EXPORTER_OTLP_ENDPOINT": ep.OTLPEndpoint,
		"CATALOG_PRIMARY_DSN":         ep.CatalogPrimaryDSN,
		"CATALOG_REPLICA_DSN":         ep.CatalogReplicaDSN,
		"MEMCACHED_SERVERS":           strings.Join(ep.MemcachedServers, ","),
		"CATALOG_MIGRATE":             "false",
		"SCALESHOP_MODE":              "dev",
	}
	for k, v := range env {
		set[k] = v
	}
	environ := os.Environ()
	for k, v := range set {
		environ = append(environ, k+"="+v)
	}
	logPath := filepath.Join(s.M.StateDir, "logs", "experiment-"+name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = environ, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &Catalog{URL: "http://" + addr, cmd: cmd, log: f}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.Stop()
			return nil, fmt.Errorf("catalog %s not ready within 30s; see %s", name, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(s.Log, "  started catalog %s at %s with %v (log %s)\n", name, c.URL, env, logPath)
	return c, nil
}

// Stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (c *Catalog) Stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	c.log.Close()
}

// errSkip marks a configuration that cannot run on this stack.
var errSkip = errors.New("skipped")
