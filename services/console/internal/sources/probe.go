package sources

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// Health states a component can be in.
const (
	Up       = "up"
	Degraded = "degraded" // alive, but not ready (a dependency is missing)
	Down     = "down"
)

// Health is what one probe found.
type Health struct {
	State  string
	Detail string
}

// Prober checks a component the way its own readiness check does: a Go
// service's /readyz, Jaeger's and Prometheus's health endpoints, and a TCP
// connect to the data stores (a stopped Postgres, memcached or Kafka
// refuses at once, which is what a client notices first).
type Prober struct {
	HTTP    *http.Client
	Timeout time.Duration
}

// Probe checks one component of the manifest.
func (p *Prober) Probe(ctx context.Context, c topology.ManifestComponent) Health {
	timeout := p.Timeout
	if timeout <= 0 {
		// Generous: on a loaded machine a busy process answers late, and a
		// killed one refuses at once anyway.
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := func(port string) string { return "127.0.0.1:" + strconv.Itoa(c.Ports[port]) }
	switch c.Kind {
	case topology.Service:
		return p.ready(ctx, "http://"+addr("http"))
	case topology.Jaeger:
		return p.get(ctx, "http://"+addr("health")+"/status")
	case topology.Postgres:
		return dial(ctx, addr("pg"))
	case topology.Memcached:
		return dial(ctx, addr("memcache"))
	case topology.Kafka:
		return dial(ctx, addr("broker"))
	default:
		if port, ok := c.Ports["http"]; ok {
			return p.get(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/-/ready")
		}
		for _, port := range c.Ports {
			return dial(ctx, "127.0.0.1:"+strconv.Itoa(port))
		}
		return Health{State: Down, Detail: "no port to probe"}
	}
}

// ProbeURL checks a Go service at base (a clone scale-out added, known
// only by its address).
func (p *Prober) ProbeURL(ctx context.Context, base string) Health {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.ready(ctx, base)
}

func (p *Prober) ready(ctx context.Context, base string) Health {
	h := p.get(ctx, base+"/readyz")
	if h.State == Up {
		return h
	}
	if alive := p.get(ctx, base+"/healthz"); alive.State == Up {
		return Health{State: Degraded, Detail: "alive, not ready: " + h.Detail}
	}
	return h
}

func (p *Prober) get(ctx context.Context, url string) Health {
	hc := p.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Health{State: Down, Detail: err.Error()}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Health{State: Down, Detail: "no answer"}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Health{State: Down, Detail: resp.Status}
	}
	return Health{State: Up}
}

func dial(ctx context.Context, addr string) Health {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return Health{State: Down, Detail: "port " + addr + " refuses connections"}
	}
	conn.Close()
	return Health{State: Up}
}

// Supervisor is the native stack's supervisor, reached over its control
// socket: the same client stackctl's subcommands use.
type Supervisor struct {
	StateDir string
}

// Running reports which components the supervisor runs.
func (s *Supervisor) Running(ctx context.Context) (map[string]bool, error) {
	return stackcontrol.Running(ctx, s.StateDir)
}

// Do performs one action (stop, kill, start, scale-out, scale-in,
// pause-replay, resume-replay) and returns the supervisor's answer.
func (s *Supervisor) Do(ctx context.Context, action, name string) (string, error) {
	return stackcontrol.Send(ctx, s.StateDir, action, name)
}
