package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/problem"
)

func TestAdminAPI(t *testing.T) {
	p, err := balancer.NewPool("catalog", []string{"http://127.0.0.1:8081"}, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Routes(mux, []*balancer.Pool{p}, func(w http.ResponseWriter, _ *http.Request, err error) { problem.Write(w, problem.From(err)) })
	do := func(method, path, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		return w
	}
	for _, step := range []struct {
		method, path, body string
		want               int
		members            int
	}{
		{"POST", "/admin/pools/catalog/members", `{"url":"http://127.0.0.1:8083"}`, 201, 2},
		{"POST", "/admin/pools/catalog/members", `{"url":"not a url"}`, 400, 2},
		{"POST", "/admin/pools/nope/members", `{"url":"http://127.0.0.1:8083"}`, 404, 2},
		{"POST", "/admin/pools/catalog/members/drain", `{"url":"http://127.0.0.1:8083"}`, 200, 2},
		{"POST", "/admin/pools/catalog/members/drain", `{"url":"http://127.0.0.1:9999"}`, 400, 2},
		{"DELETE", "/admin/pools/catalog/members?url=http://127.0.0.1:8083", "", 204, 1},
		{"DELETE", "/admin/pools/catalog/members?url=http://127.0.0.1:8083", "", 404, 1},
	} {
		if w := do(step.method, step.path, step.body); w.Code != step.want {
			t.Errorf("%s %s %s: %d, want %d: %s", step.method, step.path, step.body, w.Code, step.want, w.Body)
		}
		if n := len(p.Members()); n != step.members {
			t.Errorf("after %s %s: %d members, want %d", step.method, step.path, n, step.members)
		}
	}
	w := do("GET", "/admin/backends", "")
	var out struct {
		Pools map[string]balancer.PoolStatus
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Pools["catalog"].Members[0].State != "up" {
		t.Fatalf("backends: %s (%v)", w.Body, err)
	}
}
