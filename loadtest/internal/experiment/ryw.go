package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

// Read-your-writes under replica lag. Not an arrival-rate load: admin
// writers update their own products through the gateway and read each one
// back at once, while replay is paused on the catalog replica, so every
// read can be judged fresh or stale.

// replicaMaxLag is the catalog's default CATALOG_REPLICA_MAX_LAG: past it
// the replica leaves the read path (docs/catalog.md).
const replicaMaxLag = 2 * time.Second

const (
	rywWriters  = 2
	rywPerSec   = 40 // write-then-read rounds per writer per second
	rywDuration = 5 * time.Second
)

// rywRows are the rows in the order the table prints them; the first is
// the ratio's base.
var rywRows = []string{
	"with token, lag < bound",
	"anonymous, lag < bound",
	"with token, lag > bound",
	"anonymous, lag > bound",
	"anonymous, cached",
}

func readYourWrites() *Experiment {
	return &Experiment{
		Name: "read-your-writes", Concept: "consistency: read-your-writes under replica lag",
		Question: fmt.Sprintf("Replay is paused on the catalog replica (pg_wal_replay_pause()). %d admin writers update their own products through the gateway, %d times a second each, and read every write back at once: "+
			"with the write's X-Consistency-Token, and anonymously without it (Cache-Control: no-cache, so the read reaches the database; a cached read is counted apart — the write refreshed memcached). "+
			"Expected: 0 %% stale with the token; stale anonymous reads while the lag is below CATALOG_REPLICA_MAX_LAG (%s, the default); past it, reads move to the primary and are fresh again. "+
			"Database reads from %s to %s after the first paused write (the lag probe's 250 ms and a margin) are in no row. Replay is resumed at the end, on failure too.",
			rywWriters, rywPerSec, replicaMaxLag, replicaMaxLag-500*time.Millisecond, replicaMaxLag+time.Second),
		Metric:  Stale,
		Custom:  runReadYourWrites,
		Verdict: rywVerdict,
		Check: func(o *Outcome) []string {
			if strings.Contains(o.Verdict, "NOT as expected") {
				return []string{o.Verdict}
			}
			return nil
		},
	}
}

// product is what a writer keeps of its product: enough to PUT it again.
type rywProduct struct {
	ID          int64          `json:"id,omitempty"` // not sent on a PUT
	SKU         string         `json:"sku"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Category    string         `json:"category"`
	PriceCents  int64          `json:"price_cents"`
	Currency    string         `json:"currency"`
	Stock       int64          `json:"stock"`
	Attributes  map[string]any `json:"attributes"`
}

// rywSample is one read: which row it belongs to, how long it took, whether
// it saw the write, and which server answered.
type rywSample struct {
	row   string
	took  time.Duration
	stale bool
	err   string
	from  string
}

type rywClient struct {
	base, token string
	hc          *http.Client
}

// create posts a product, and posts it again while the catalog answers 503:
// this experiment may follow primary-down, whose primary has just started
// again, and a 503 is the API's "not now, nothing written" (its
// Retry-After is 1 s).
func (c *rywClient) create(ctx context.Context, p rywProduct) (*http.Response, []byte, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, b, _, err := c.do(ctx, http.MethodPost, "/api/products", p)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp, b, err
		}
		if !sleep(ctx, time.Second) {
			return resp, b, ctx.Err()
		}
	}
}

func (c *rywClient) do(ctx context.Context, method, path string, body any, header ...string) (*http.Response, []byte, time.Duration, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, time.Since(start), err
}

// read GETs product id with header and judges it against name.
func (c *rywClient) read(ctx context.Context, row string, id int64, name string, header ...string) rywSample {
	resp, b, took, err := c.do(ctx, http.MethodGet, "/api/products/"+strconv.FormatInt(id, 10), nil, header...)
	s := rywSample{row: row, took: took}
	switch {
	case err != nil:
		s.err = "transport"
	case resp.StatusCode != http.StatusOK:
		s.err = "http " + strconv.Itoa(resp.StatusCode)
	default:
		var p rywProduct
		if err := json.Unmarshal(b, &p); err != nil {
			s.err = "bad body"
		}
		s.stale = p.Name != name
		s.from = resp.Header.Get("X-Served-From")
	}
	return s
}

func runReadYourWrites(ctx context.Context, s *Stack, _ Options) ([]Row, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	base := s.M.Endpoints.GatewayURL
	token, err := scenario.DevToken(ctx, hc, base, "exp-ryw-admin", "admin")
	if err != nil {
		return nil, err
	}
	c := &rywClient{base: base, token: token, hc: hc}

	// Each writer owns one product, so "the last write" is well defined.
	products := make([]rywProduct, rywWriters)
	for i := range products {
		in := rywProduct{SKU: fmt.Sprintf("LT-RYW-%d-%d", time.Now().UnixNano(), i), Name: "ryw start",
			Description: "made by the read-your-writes experiment", Category: "tools", PriceCents: 1234,
			Currency: "USD", Stock: 5, Attributes: map[string]any{}}
		resp, b, err := c.create(ctx, in)
		if err != nil || resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("creating a product: %v %s", err, statusOf(resp))
		}
		if err := json.Unmarshal(b, &products[i]); err != nil {
			return nil, fmt.Errorf("creating a product: %w", err)
		}
	}
	if err := waitOnReplica(ctx, c, products); err != nil {
		return nil, err
	}

	replica, err := pgx.Connect(ctx, s.M.Endpoints.AdminDSNs[topology.PGCatalogReplica])
	if err != nil {
		return nil, fmt.Errorf("connecting to the replica as superuser: %w", err)
	}
	defer replica.Close(context.WithoutCancel(ctx))
	if _, err := replica.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		return nil, fmt.Errorf("pausing replay: %w", err)
	}
	fmt.Fprintln(s.Log, "  replica: replay paused")
	resumed := false
	resume := func() error {
		if resumed {
			return nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := replica.Exec(rctx, `SELECT pg_wal_replay_resume()`); err != nil {
			return fmt.Errorf("RESUMING REPLAY FAILED, run SELECT pg_wal_replay_resume() on the replica: %w", err)
		}
		resumed = true
		fmt.Fprintln(s.Log, "  replica: replay resumed")
		return nil
	}
	defer func() { _ = resume() }()

	samples, err := rywLoop(ctx, c, products)
	if rerr := resume(); rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	// Leave the stack as the next experiment expects it: the replica back
	// in the read path.
	if err := waitOnReplica(ctx, c, products[:1]); err != nil {
		fmt.Fprintln(s.Log, "  after resume:", err)
	}
	return rywRowsOf(samples), nil
}

// rename PUTs p under a new name and, only once the catalog took it,
// makes that p's name: a write the deadline cut off leaves p as the
// catalog has it, so waiting for p later waits only for what was written.
func (c *rywClient) rename(ctx context.Context, p *rywProduct, name string) (*http.Response, error) {
	in := *p
	in.ID, in.Name = 0, name
	resp, _, _, err := c.do(ctx, http.MethodPut, "/api/products/"+strconv.FormatInt(p.ID, 10), in)
	if err == nil && resp.StatusCode == http.StatusOK {
		p.Name = name
	}
	return resp, err
}

// rywLoop runs the writers for rywDuration and returns every read.
func rywLoop(ctx context.Context, c *rywClient, products []rywProduct) ([]rywSample, error) {
	var (
		mu      sync.Mutex
		samples []rywSample
		first   time.Time // the first paused write: the lag clock starts here
		fail    error
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(ctx, rywDuration)
	defer cancel()
	for w := range products {
		wg.Add(1)
		go func(p *rywProduct) {
			defer wg.Done()
			tick := time.NewTicker(time.Second / rywPerSec)
			defer tick.Stop()
			for n := 1; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				resp, err := c.rename(ctx, p, fmt.Sprintf("ryw write %d", n))
				if ctx.Err() != nil {
					return
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					mu.Lock()
					fail = fmt.Errorf("a write failed: %v %s", err, statusOf(resp))
					mu.Unlock()
					cancel()
					return
				}
				mu.Lock()
				if first.IsZero() {
					first = start
				}
				since := time.Since(first)
				mu.Unlock()
				lsn := resp.Header.Get("X-Consistency-Token")
				got := []rywSample{
					c.read(ctx, "token", p.ID, p.Name, "X-Consistency-Token", lsn),
					c.read(ctx, "anonymous", p.ID, p.Name, "Cache-Control", "no-cache"),
					c.read(ctx, rywRows[4], p.ID, p.Name),
				}
				if ctx.Err() != nil {
					return // cut off by the end: not a result
				}
				switch {
				case since < replicaMaxLag-500*time.Millisecond:
					got[0].row, got[1].row = rywRows[0], rywRows[1]
				case since > replicaMaxLag+time.Second:
					got[0].row, got[1].row = rywRows[2], rywRows[3]
				default:
					got = got[2:] // near the bound: either answer is right
				}
				mu.Lock()
				samples = append(samples, got...)
				mu.Unlock()
			}
		}(&products[w])
	}
	wg.Wait()
	return samples, fail
}

func rywRowsOf(samples []rywSample) []Row {
	rows := make([]Row, 0, len(rywRows))
	for _, name := range rywRows {
		r := Row{Config: name, ErrorKinds: map[string]int64{}, ServedFrom: map[string]int64{}}
		var ms []float64
		for _, s := range samples {
			if s.row != name {
				continue
			}
			if s.err != "" {
				r.Errors++
				r.ErrorKinds[s.err]++
				continue
			}
			r.Reads++
			if s.stale {
				r.StaleReads++
			}
			r.ServedFrom[orDash(s.from)]++
			ms = append(ms, float64(s.took.Microseconds())/1000)
		}
		slices.Sort(ms)
		r.P50, r.P99 = percentile(ms, 0.50), percentile(ms, 0.99)
		r.AchievedRPS = float64(r.Reads+r.Errors) / rywDuration.Seconds()
		rows = append(rows, r)
	}
	return rows
}

// percentile of sorted values (nearest rank); 0 for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// waitOnReplica waits until an anonymous database read of each product is
// served by the replica and sees its current name.
func waitOnReplica(ctx context.Context, c *rywClient, products []rywProduct) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range products {
		for {
			s := c.read(ctx, "", p.ID, p.Name, "Cache-Control", "no-cache")
			if s.err == "" && !s.stale && s.from == "replica" {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return errors.New("the replica did not serve the experiment's products within 30s (is it streaming and in the read path?)")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return resp.Status
}

func rywVerdict(rows []Row) string {
	if len(rows) != len(rywRows) {
		return ""
	}
	var b strings.Builder
	tok, below, tokPast, past, cached := rows[0], rows[1], rows[2], rows[3], rows[4]
	check := func(ok bool) string {
		if ok {
			return "as expected"
		}
		return "NOT as expected"
	}
	fmt.Fprintf(&b, "with the token: %d of %d reads stale (%s: 0 %%)\n", tok.StaleReads+tokPast.StaleReads, tok.Reads+tokPast.Reads,
		check(tok.Reads > 0 && tok.StaleReads+tokPast.StaleReads == 0))
	fmt.Fprintf(&b, "anonymous, lag below the bound: %.1f %% stale (%s: > 0 %%)\n", below.StalePct(), check(below.StaleReads > 0))
	fmt.Fprintf(&b, "anonymous, lag past the bound: %.1f %% stale, %d of %d from the primary (%s: fresh, from the primary)\n",
		past.StalePct(), past.ServedFrom["primary"], past.Reads, check(past.Reads > 0 && past.StaleReads == 0))
	fmt.Fprintf(&b, "anonymous, cached: %.1f %% stale (the write refreshed memcached)\n", cached.StalePct())
	for _, pair := range [][2]Row{{tok, below}, {tokPast, past}} {
		if pair[1].P50 > 0 {
			fmt.Fprintf(&b, "latency, %s / %s: p50 %.2f / %.2f ms = %.2f×, p99 %.2f / %.2f ms\n", pair[0].Config, pair[1].Config,
				pair[0].P50, pair[1].P50, pair[0].P50/pair[1].P50, pair[0].P99, pair[1].P99)
		}
	}
	return b.String()
}
