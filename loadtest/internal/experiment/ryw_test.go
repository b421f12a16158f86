package experiment

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRenameKeepsOnlyWhatWasWritten: a PUT the experiment's deadline cuts
// off never reached the catalog, so the product keeps the name it has
// there; the experiment's last wait for the replica waits for that name,
// not for one that was never written (it used to time out after 30 s with
// the replica streaming and no lag).
func TestRenameKeepsOnlyWhatWasWritten(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Refuse") != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	c := &rywClient{base: srv.URL, token: "t", hc: srv.Client()}
	p := &rywProduct{ID: 7, Name: "ryw write 3"}

	if _, err := c.rename(context.Background(), p, "ryw write 4"); err != nil || p.Name != "ryw write 4" {
		t.Fatalf("after an accepted PUT: name %q, err %v; want ryw write 4", p.Name, err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // the run's deadline passed as the write went out
	if _, err := c.rename(cancelled, p, "ryw write 5"); err == nil {
		t.Fatal("a PUT on a cancelled context succeeded")
	}
	if p.Name != "ryw write 4" {
		t.Fatalf("after a cut-off PUT the product is named %q, want the last written name ryw write 4", p.Name)
	}
	refusing := &rywClient{base: srv.URL, token: "t", hc: &http.Client{Transport: headerTransport{"X-Refuse", "1"}}}
	if _, err := refusing.rename(context.Background(), p, "ryw write 6"); err != nil || p.Name != "ryw write 4" {
		t.Fatalf("after a refused PUT: name %q (err %v), want ryw write 4", p.Name, err)
	}
}

type headerTransport struct{ key, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return http.DefaultTransport.RoundTrip(r)
}
