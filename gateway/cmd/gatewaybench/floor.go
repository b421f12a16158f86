package main

import (
	"context"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/httpserver"
)

// The floor is the least a Go proxy built the way the gateway is built can
// cost: net/http's server, an httputil.ReverseProxy with the gateway's own
// tuned Transport and buffer pool, round robin over the clones — and
// nothing else (no tracing, metrics, auth, retries, request ids or access
// log). Measured in the same run as the gateway and nginx, it splits the
// gap between them into what the gateway adds and what net/http itself
// costs.
//
// It runs in its own process, so its CPU per request is read the way the
// gateway's is: gatewaybench starts itself again with floorEnv set.
const floorEnv = "GATEWAYBENCH_FLOOR"

// serveFloor serves the floor proxy; spec is "addr upstream,upstream".
func serveFloor(ctx context.Context, spec string) error {
	addr, upstreams, _ := strings.Cut(spec, " ")
	var members []*url.URL
	for _, u := range strings.Split(upstreams, ",") {
		parsed, err := url.Parse(u)
		if err != nil {
			return err
		}
		members = append(members, parsed)
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(members[next.Add(1)%uint64(len(members))])
			pr.Out.Host = pr.In.Host
		},
		Transport:  proxy.NewTransport(),
		BufferPool: proxy.NewBufferPool(),
	}
	srv := httpserver.Server(addr, rp)
	return httpserver.Serve(ctx, srv, 5*time.Second)
}

func startFloor(port int, clones []string, work string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorEnv+"=127.0.0.1:"+strconv.Itoa(port)+" "+strings.Join(clones, ","))
	log, err := os.Create(filepath.Join(work, "floor.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, cmd.Start()
}
