package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// fakeStack records launches; a component named in gates blocks in its
// launch until the test closes its gate, the way Jaeger's launch waits for
// its build.
type fakeStack struct {
	mu       sync.Mutex
	launched []string
	gates    map[string]chan error
	late     chan string
	lateErrs map[string]error
}

func newFakeStack(gated ...string) *fakeStack {
	f := &fakeStack{gates: map[string]chan error{}, late: make(chan string, 10), lateErrs: map[string]error{}}
	for _, g := range gated {
		f.gates[g] = make(chan error, 1)
	}
	return f
}

func (f *fakeStack) launch(ctx context.Context, c topology.Component) error {
	if gate, ok := f.gates[c.Name]; ok {
		select {
		case err := <-gate:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.launched = append(f.launched, c.Name)
	f.mu.Unlock()
	return nil
}

func (f *fakeStack) building(name string) bool { _, ok := f.gates[name]; return ok }

func (f *fakeStack) reportLate(name string, err error) {
	f.mu.Lock()
	f.lateErrs[name] = err
	f.mu.Unlock()
	f.late <- name
}

func (f *fakeStack) launchedSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.launched)
}

// A stack shaped like the real one: Jaeger is depended on by nothing but a
// trace reader; the services do not wait for it.
var coldStack = []topology.Component{
	{Name: "pg"},
	{Name: "jaeger"},
	{Name: "catalog", DependsOn: []string{"pg"}},
	{Name: "gateway", DependsOn: []string{"catalog"}},
	{Name: "trace-reader", DependsOn: []string{"jaeger", "gateway"}},
}

func TestStartInOrderServesWhileJaegerBuilds(t *testing.T) {
	f := newFakeStack("jaeger")
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	deferred, wait, err := startInOrder(context.Background(), bg, coldStack, f.launch, f.building, f.reportLate)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"jaeger", "trace-reader"}; !slices.Equal(deferred, want) {
		t.Errorf("deferred %v, want %v", deferred, want)
	}
	// Returned with Jaeger still building: everything that does not need
	// it is up, in dependency order, and nothing that needs it is.
	if got, want := f.launchedSoFar(), []string{"pg", "catalog", "gateway"}; !slices.Equal(got, want) {
		t.Fatalf("launched before the build ended: %v, want %v", got, want)
	}

	f.gates["jaeger"] <- nil // the binary exists now
	wait()
	if got, want := f.launchedSoFar(), []string{"pg", "catalog", "gateway", "jaeger", "trace-reader"}; !slices.Equal(got, want) {
		t.Errorf("launched after the build: %v, want %v", got, want)
	}
	for _, name := range []string{"jaeger", "trace-reader"} {
		if err, reported := f.lateErrs[name]; !reported || err != nil {
			t.Errorf("late start of %s reported %v (reported: %v), want success", name, err, reported)
		}
	}
}

func TestStartInOrderFailedBuildLeavesTheRestRunning(t *testing.T) {
	f := newFakeStack("jaeger")
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, wait, err := startInOrder(context.Background(), bg, coldStack, f.launch, f.building, f.reportLate)
	if err != nil {
		t.Fatal(err)
	}
	buildErr := errors.New("go build: disk full")
	f.gates["jaeger"] <- buildErr
	if name := <-f.late; name != "jaeger" {
		t.Fatalf("first late report is for %s, want jaeger", name)
	}
	f.mu.Lock()
	jaegerErr := f.lateErrs["jaeger"]
	f.mu.Unlock()
	if !errors.Is(jaegerErr, buildErr) {
		t.Errorf("jaeger's late start reported %v, want the build's error", jaegerErr)
	}
	// What waits for Jaeger never starts; it ends when the stack stops.
	cancel()
	wait()
	if slices.Contains(f.launchedSoFar(), "trace-reader") {
		t.Error("trace-reader launched although Jaeger never started")
	}
	if !errors.Is(f.lateErrs["trace-reader"], context.Canceled) {
		t.Errorf("trace-reader ended with %v, want context.Canceled when the stack stops", f.lateErrs["trace-reader"])
	}
	if got := f.launchedSoFar(); !slices.Equal(got, []string{"pg", "catalog", "gateway"}) {
		t.Errorf("running: %v, want the rest of the stack untouched", got)
	}
}

func TestStartInOrderStopsLateStartsWhenTheStackStops(t *testing.T) {
	f := newFakeStack("jaeger")
	bg, cancel := context.WithCancel(context.Background())
	_, wait, err := startInOrder(context.Background(), bg, coldStack, f.launch, f.building, f.reportLate)
	if err != nil {
		t.Fatal(err)
	}
	cancel() // Ctrl-C while Jaeger is still building
	wait()
	for _, name := range []string{"jaeger", "trace-reader"} {
		if !errors.Is(f.lateErrs[name], context.Canceled) {
			t.Errorf("%s: late start ended with %v, want context.Canceled", name, f.lateErrs[name])
		}
	}
	if got := f.launchedSoFar(); slices.Contains(got, "jaeger") {
		t.Errorf("jaeger launched after the stack stopped: %v", got)
	}
}

func TestStartInOrderWaitsForEverythingWhenNothingBuilds(t *testing.T) {
	f := newFakeStack()
	deferred, wait, err := startInOrder(context.Background(), context.Background(), coldStack, f.launch, f.building, f.reportLate)
	if err != nil {
		t.Fatal(err)
	}
	wait()
	if len(deferred) != 0 {
		t.Errorf("deferred %v without a build", deferred)
	}
	if got := f.launchedSoFar(); len(got) != len(coldStack) {
		t.Errorf("launched %v, want all of %d before returning", got, len(coldStack))
	}
	if len(f.lateErrs) != 0 {
		t.Errorf("late starts reported without a build: %v", f.lateErrs)
	}
}

func TestStartInOrderReturnsTheFirstError(t *testing.T) {
	f := newFakeStack("pg")
	f.gates["pg"] <- errors.New("initdb failed")
	building := func(string) bool { return false } // pg is not deferred: it just fails
	_, wait, err := startInOrder(context.Background(), context.Background(), coldStack, f.launch, building, f.reportLate)
	wait()
	if err == nil || err.Error() != "initdb failed" {
		t.Fatalf("err = %v, want pg's error", err)
	}
	if got := f.launchedSoFar(); slices.Contains(got, "catalog") || slices.Contains(got, "gateway") {
		t.Errorf("launched %v although pg, which they depend on, failed", got)
	}
}
