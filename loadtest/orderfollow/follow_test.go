package orderfollow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// A fake orders API: order "slow" stays pending for its first two long
// polls (each answering after 30 ms), then is confirmed; "gone" is 404.
func fakeOrders(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Query().Get("wait") == "" {
			t.Errorf("poll %s without the customer's token or a wait", r.URL)
		}
		switch strings.TrimPrefix(r.URL.Path, "/api/orders/") {
		case "slow":
			time.Sleep(30 * time.Millisecond)
			if polls.Add(1) <= 2 {
				w.Write([]byte(`{"status":"pending"}`))
				return
			}
			w.Write([]byte(`{"status":"confirmed"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &polls
}

func accepted(id string, at time.Time) engine.Response {
	return engine.Response{Status: http.StatusAccepted, Body: []byte(`{"id":"` + id + `"}`), Arrived: at}
}

func TestAcceptToFinalIsTimedFromThe202UntilTheClientSeesTheStatus(t *testing.T) {
	srv, polls := fakeOrders(t)
	phases := engine.NewPhases()
	f := New(srv.Client(), srv.URL, phases, 10)
	ctx := context.Background()
	at := time.Now().Add(-100 * time.Millisecond) // the 202 arrived 100 ms ago
	f.Start(ctx, accepted("slow", at), "tok")
	f.Start(ctx, accepted("gone", at), "tok")
	f.Start(ctx, engine.Response{Status: http.StatusServiceUnavailable}, "tok") // not accepted: not followed
	f.Wait(ctx)

	got := map[string]engine.PhaseResult{}
	for _, p := range phases.Results() {
		got[p.Name] = p
	}
	final := got[PhaseFinal]
	if final.Latency.Count != 1 || got[PhaseConfirmed].Latency.Count != 1 {
		t.Fatalf("final %+v, confirmed %+v: want the one order that got confirmed", final, got[PhaseConfirmed])
	}
	// 100 ms before the follow began, then three polls of 30 ms each.
	if final.Latency.Max < 190 {
		t.Errorf("accept→final %.0f ms, want ≥ 190 ms (from the 202, through three polls)", final.Latency.Max)
	}
	if polls.Load() != 3 {
		t.Errorf("%d polls of the slow order, want 3 (pending, pending, confirmed)", polls.Load())
	}
	if final.Errors["polling: http 404"] != 1 || len(final.Errors) != 1 {
		t.Errorf("errors %v, want the 404 order counted once", final.Errors)
	}
}

func TestOrdersBeyondTheCapAreCountedNotDropped(t *testing.T) {
	srv, _ := fakeOrders(t)
	phases := engine.NewPhases()
	f := New(srv.Client(), srv.URL, phases, 1)
	ctx := context.Background()
	f.Start(ctx, accepted("slow", time.Now()), "tok")
	f.Start(ctx, accepted("slow", time.Now()), "tok") // the one slot is taken
	f.Wait(ctx)
	for _, p := range phases.Results() {
		if p.Name == PhaseFinal && p.Errors["too many orders being followed"] != 1 {
			t.Errorf("errors %v, want one order over the cap", p.Errors)
		}
	}
}
