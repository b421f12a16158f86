// Package stackcontrol is the client of a running stack's supervisor: it
// stops, kills and starts single components and scales services out and
// in, over the unix socket the supervisor serves in its state directory.
// stackctl's subcommands, the test helpers and the load-test experiments
// all break things on purpose through it.
package stackcontrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
)

// Socket is where the supervisor of the stack kept in stateDir listens.
func Socket(stateDir string) string { return filepath.Join(stateDir, "run", "control.sock") }

// ErrNoSupervisor is what Do returns, wrapped, when no supervisor listens
// on the stack's socket: the stack is not running.
var ErrNoSupervisor = errors.New("no stack supervisor answers")

// Options change one start or scale-out of a service.
type Options struct {
	Env []string // K=V on top of the service's usual environment
	// CPUs is the CPU quota of a catalog, orders or worker clone for this
	// start, in cores ("0.5"; "0" runs it unbounded); "" keeps the
	// configured one (CATALOG_CPUS, ...).
	CPUs string
}

// Send asks the supervisor of the stack in stateDir to do action (stop,
// kill, start, scale-out, scale-in, pause-replay, resume-replay) to name (a component, or for scaling a
// service such as "catalog"). env (K=V) goes on top of a service's usual
// environment, for that start only. It returns the supervisor's answer.
func Send(ctx context.Context, stateDir, action, name string, env ...string) (string, error) {
	return Do(ctx, stateDir, action, name, Options{Env: env})
}

// client talks HTTP to the supervisor over its unix socket.
func client(stateDir string) *http.Client {
	sock := Socket(stateDir)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// Running reports, for every component the supervisor has started (the
// topology's and the clones scale-out added), whether its process runs.
func Running(ctx context.Context, stateDir string) (map[string]bool, error) {
	c := client(stateDir)
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://stackctl/components", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no stack supervisor answers on %s: %w", Socket(stateDir), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stack supervisor: %s", resp.Status)
	}
	out := map[string]bool{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("stack supervisor: %w", err)
	}
	return out, nil
}

// Do is Send with every option of a start.
func Do(ctx context.Context, stateDir, action, name string, o Options) (string, error) {
	sock := Socket(stateDir)
	client := client(stateDir)
	defer client.CloseIdleConnections()
	u := "http://stackctl/components/" + url.PathEscape(name) + "/" + url.PathEscape(action)
	q := url.Values{}
	if len(o.Env) > 0 {
		q["env"] = o.Env
	}
	if o.CPUs != "" {
		q.Set("cpus", o.CPUs)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w on %s: %w", ErrNoSupervisor, sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	answer := strings.TrimSpace(string(body))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", action, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s", action, name, answer)
	}
	return answer, nil
}
