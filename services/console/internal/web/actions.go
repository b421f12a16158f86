package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/console/internal/overview"
)

// Break it: each button is one supervisor action on one component. The
// list below is the whole set the console will send; anything else is
// refused before it reaches the supervisor.

// actionGroup is one row of buttons on the Break it page.
type actionGroup struct {
	Title   string
	Note    string
	Buttons []button
}

type button struct {
	Action, Target, Label string
}

// The components whose processes the page may stop and start, besides clones.
var infraTargets = []string{"memcached-1", "memcached-2", "pg-catalog-primary", "pg-catalog-replica", "kafka"}

// scalable services: stackctl scale-out adds a clone to the gateway's pool.
var scalable = []string{"catalog", "orders"}

// groups lays out the buttons for the clones running now.
func groups(snap *overview.Snapshot) []actionGroup {
	var clones []button
	for _, binary := range []string{"catalog", "orders", "worker"} {
		for _, n := range snap.Clones(binary) {
			for _, a := range []string{"kill", "stop", "start"} {
				clones = append(clones, button{Action: a, Target: n.Name, Label: a + " " + n.Name})
			}
		}
	}
	return []actionGroup{
		{Title: "Clones", Note: "kill is SIGKILL (a crash); stop is a graceful shutdown; start rebuilds and starts it", Buttons: clones},
		{Title: "Scale", Note: "scale-out starts one more clone and registers it with the gateway; scale-in drains and stops the newest extra one", Buttons: []button{
			{"scale-out", "catalog", "scale out catalog"}, {"scale-in", "catalog", "scale in catalog"},
			{"scale-out", "orders", "scale out orders"}, {"scale-in", "orders", "scale in orders"},
		}},
		{Title: "Cache", Note: "a stopped node's keys miss and go to Postgres; requests still succeed", Buttons: []button{
			{"stop", "memcached-1", "stop memcached-1"}, {"start", "memcached-1", "start memcached-1"},
			{"stop", "memcached-2", "stop memcached-2"}, {"start", "memcached-2", "start memcached-2"},
		}},
		{Title: "Replication", Note: "paused replay: the replica answers but falls behind; past the lag bound reads go to the primary", Buttons: []button{
			{"pause-replay", "pg-catalog-replica", "pause replay"}, {"resume-replay", "pg-catalog-replica", "resume replay"},
		}},
		{Title: "Catalog primary", Note: "primary down: reads keep working from the replica and the cache, writes fail fast with 503", Buttons: []button{
			{"stop", "pg-catalog-primary", "stop the primary"}, {"start", "pg-catalog-primary", "start the primary"},
		}},
		{Title: "Kafka", Note: "orders are still accepted (202) into the outbox; they are published and finished once Kafka is back", Buttons: []button{
			{"stop", "kafka", "stop Kafka"}, {"start", "kafka", "start Kafka"},
		}},
	}
}

// allowed says whether the page may send action to target.
func allowed(action, target string, snap *overview.Snapshot) bool {
	switch action {
	case "kill", "stop", "start":
		if slices.Contains(infraTargets, target) {
			return action != "kill"
		}
		for _, binary := range []string{"catalog", "orders", "worker"} {
			for _, n := range snap.Clones(binary) {
				if n.Name == target {
					return true
				}
			}
		}
		return false
	case "scale-out", "scale-in":
		return slices.Contains(scalable, target)
	case "pause-replay", "resume-replay":
		return target == "pg-catalog-replica"
	}
	return false
}

// entry is one action on the timeline.
type entry struct {
	ID       int
	At       time.Time
	Action   string
	Target   string
	Done     bool
	OK       bool
	Answer   string
	Duration time.Duration
}

// timeline keeps the latest actions, newest first.
type timeline struct {
	now     func() time.Time
	mu      sync.Mutex
	next    int
	entries []*entry
}

const timelineLength = 50

func (t *timeline) add(action, target string) *entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	e := &entry{ID: t.next, At: t.now(), Action: action, Target: target}
	t.entries = append([]*entry{e}, t.entries...)
	if len(t.entries) > timelineLength {
		t.entries = t.entries[:timelineLength]
	}
	return e
}

func (t *timeline) finish(e *entry, answer string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Done, e.OK, e.Answer, e.Duration = true, err == nil, answer, t.now().Sub(e.At)
	if err != nil {
		e.Answer = err.Error()
	}
}

// list returns copies, so a template never reads an entry being finished.
func (t *timeline) list() []entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]entry, len(t.entries))
	for i, e := range t.entries {
		out[i] = *e
	}
	return out
}

// breakAction runs one action in the background and answers 202 with the
// timeline at once: starting a clone rebuilds it and can take a while, and
// the page shows the action as running until the supervisor answers.
func (s *Server) breakAction(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Control == nil {
		writeProblem(w, problem.ErrNotFound, "Break it is off: it needs dev mode and the native supervisor (make run)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		writeProblem(w, problem.ErrInvalid, "the form could not be read")
		return
	}
	action, target := strings.TrimSpace(r.PostForm.Get("action")), strings.TrimSpace(r.PostForm.Get("target"))
	if !allowed(action, target, s.cfg.Overview.Latest(r.Context(), time.Second)) {
		writeProblem(w, problem.ErrInvalid, "no such action on this page: %s %s", action, target)
		return
	}
	e := s.timeline.add(action, target)
	s.cfg.Log.Info("break it", "action", action, "target", target)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ActionTimeout)
		defer cancel()
		answer, err := s.cfg.Control.Do(ctx, action, target)
		s.timeline.finish(e, answer, err)
		s.cfg.Log.Info("break it done", "action", action, "target", target, "ok", err == nil, "answer", answer, "err", err)
	}()
	if r.URL.Query().Get("fragment") == "" {
		// A plain form post (no script) goes back to the page.
		http.Redirect(w, r, "/break", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusAccepted, "break", "timeline", s.timeline.list())
}

// writeProblem answers with an RFC 9457 problem of category whose detail is
// written for the user.
func writeProblem(w http.ResponseWriter, category error, format string, args ...any) {
	problem.Write(w, problem.From(problem.Errorf(category, format, args...)))
}
