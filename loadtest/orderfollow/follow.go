// Package orderfollow follows accepted orders to their final status as a
// client sees it: from the moment the 202 arrived until a long poll on
// GET /api/orders/{id}?wait=5s shows the status leave pending. Scenarios
// with `follow: order` and ordersbench both measure accept→final with it.
package orderfollow

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// Phase names of an order followed to its end.
const (
	PhaseFinal     = "order accepted → final status"
	PhaseConfirmed = "order accepted → confirmed"
	PhaseRejected  = "order accepted → rejected"
)

// Follower polls each accepted order until it leaves pending.
type Follower struct {
	client *http.Client
	base   string
	phases *engine.Phases
	slots  chan struct{}
	wg     sync.WaitGroup
}

// New follows orders placed through base (the gateway), at most maxFollowed
// at once; an order beyond that counts as a failure of PhaseFinal, not as a
// silent gap.
func New(client *http.Client, base string, phases *engine.Phases, maxFollowed int) *Follower {
	return &Follower{client: client, base: base, phases: phases, slots: make(chan struct{}, maxFollowed)}
}

// Start follows the order that response r accepted, on behalf of the
// customer whose token placed it. It returns at once; Wait waits.
func (f *Follower) Start(ctx context.Context, r engine.Response, token string) {
	if r.Failed || r.Status != http.StatusAccepted {
		return
	}
	var order struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Body, &order); err != nil || order.ID == "" {
		f.phases.Fail(PhaseFinal, "202 without an order id")
		return
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.phases.Fail(PhaseFinal, "too many orders being followed")
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		f.follow(context.WithoutCancel(ctx), order.ID, token, r.Arrived)
	}()
}

func (f *Follower) follow(ctx context.Context, id, token string, accepted time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// A poll that fails with 5xx is retried; the order counts as failed
	// once, with the last reason, only if it never reaches a final status.
	lastErr := engine.KindTimeout
	for {
		if ctx.Err() != nil {
			f.phases.Fail(PhaseFinal, lastErr)
			return
		}
		asked := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/api/orders/"+id+"?wait=5s", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := f.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				lastErr = "polling: " + engine.KindOf(err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			f.phases.Fail(PhaseFinal, lastErr)
			return
		}
		var o struct {
			Status string `json:"status"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			lastErr = "polling: " + engine.StatusKind(resp.StatusCode)
			if resp.StatusCode < 500 {
				f.phases.Fail(PhaseFinal, lastErr)
				return
			}
			time.Sleep(200 * time.Millisecond) // then poll again, within ctx's bound
		case derr != nil:
			f.phases.Fail(PhaseFinal, "polling: undecodable order")
			return
		case o.Status == "pending":
			// The long poll ended without a change; a server that answers
			// at once (no long poll) is asked again after a pause.
			if time.Since(asked) < 50*time.Millisecond {
				time.Sleep(100 * time.Millisecond)
			}
		default:
			d := time.Since(accepted)
			f.phases.Record(PhaseFinal, d)
			f.phases.Record("order accepted → "+o.Status, d) // PhaseConfirmed, PhaseRejected
			return
		}
	}
}

// Wait waits until every order started is followed to its end, or ctx ends;
// the orders still pending then count as failures.
func (f *Follower) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.phases.Fail(PhaseFinal, "still pending when the run ended")
	}
}
