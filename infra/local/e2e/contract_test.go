package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/scaleshop/scaleshop/infra/apicontract"
	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// contractClient sends requests through the real gateway and holds every
// answer to docs/openapi.yaml: its status documented for the operation,
// its required headers there, its body of the documented schema.
type contractClient struct {
	t        *testing.T
	contract *apicontract.Contract
	base     string
}

type call struct {
	method, path, token string
	body                any // marshalled unless a string
	header              []string
	want                int
}

func (c *contractClient) do(k call) response {
	c.t.Helper()
	var rd io.Reader
	switch b := k.body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(k.method, c.base+k.path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	for i := 0; i+1 < len(k.header); i += 2 {
		req.Header.Set(k.header[i], k.header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", k.method, k.path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != k.want {
		c.t.Errorf("%s %s: %d, want %d: %.300s", k.method, k.path, resp.StatusCode, k.want, body)
	}
	if err := c.contract.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		c.t.Error(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// TestRealAnswersFollowTheContract walks the public API through the
// gateway, successes and failures alike, and validates each answer against
// docs/openapi.yaml.
func TestRealAnswersFollowTheContract(t *testing.T) {
	stack := stacktest.Require(t)
	contract, err := apicontract.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := &contractClient{t: t, contract: contract, base: stack.Endpoints.GatewayURL}
	suffix := rand.Int64()
	customer := devToken(t, stack, fmt.Sprintf("contract-%d", suffix), "customer")
	other := devToken(t, stack, fmt.Sprintf("contract-other-%d", suffix), "customer")
	admin := devToken(t, stack, "contract-admin", "admin")

	c.do(call{method: "GET", path: "/healthz", want: 200})
	c.do(call{method: "GET", path: "/readyz", want: 200})
	doc := c.do(call{method: "GET", path: "/api/openapi.yaml", want: 200})
	c.do(call{method: "GET", path: "/api/openapi.yaml", header: []string{"If-None-Match", doc.header.Get("ETag")}, want: 304})
	c.do(call{method: "POST", path: "/api/auth/dev-token", body: map[string]string{"customer_id": "x", "role": "customer"}, want: 200})
	c.do(call{method: "POST", path: "/api/auth/dev-token", body: map[string]string{"customer_id": "x", "role": "root"}, want: 400})

	// Catalog reads.
	page := c.do(call{method: "GET", path: "/api/products?limit=2", want: 200})
	c.do(call{method: "GET", path: "/api/products?limit=2", header: []string{"If-None-Match", page.header.Get("ETag")}, want: 304})
	c.do(call{method: "GET", path: "/api/products?limit=0", want: 400})
	c.do(call{method: "GET", path: "/api/products/1", want: 200})
	c.do(call{method: "GET", path: "/api/products/abc", want: 400})
	c.do(call{method: "GET", path: "/api/products/999999999", want: 404})
	c.do(call{method: "GET", path: "/api/products/1", token: "not-a-jwt", want: 401})

	// Catalog writes: create, replace under If-Match, delete.
	sku := fmt.Sprintf("CONTRACT-%d", suffix)
	product := map[string]any{"sku": sku, "name": "Contract test", "category": "tests", "price_cents": 100,
		"currency": "USD", "stock": 5, "attributes": map[string]any{"colour": "red"}}
	c.do(call{method: "POST", path: "/api/products", body: product, want: 401})
	c.do(call{method: "POST", path: "/api/products", token: customer, body: product, want: 403})
	c.do(call{method: "POST", path: "/api/products", token: admin, body: `{"sku":""}`, want: 400})
	created := c.do(call{method: "POST", path: "/api/products", token: admin, body: product, want: 201})
	c.do(call{method: "POST", path: "/api/products", token: admin, body: product, want: 409})
	var p struct{ ID int64 }
	if err := json.Unmarshal(created.body, &p); err != nil || p.ID == 0 {
		t.Fatalf("created product: %s", created.body)
	}
	path := fmt.Sprintf("/api/products/%d", p.ID)
	etag := created.header.Get("ETag")
	product["name"] = "Contract test, renamed"
	c.do(call{method: "PUT", path: path, token: admin, body: product, header: []string{"If-Match", `"stale-0"`}, want: 412})
	c.do(call{method: "PUT", path: path, token: admin, body: product, header: []string{"If-Match", "W/" + etag}, want: 412})
	c.do(call{method: "PUT", path: path, token: admin, body: product, header: []string{"If-Match", "p-unquoted"}, want: 400})
	c.do(call{method: "PUT", path: path, token: admin, body: product, header: []string{"If-Match", `"stale-0", ` + etag}, want: 200})
	c.do(call{method: "DELETE", path: path, token: admin, header: []string{"If-Match", etag}, want: 412}) // the PUT moved it on
	c.do(call{method: "DELETE", path: path, token: admin, want: 204})
	c.do(call{method: "DELETE", path: path, token: admin, want: 404})

	// Orders: place, replay, a key reused with another body, the long poll, listings.
	order := map[string]any{"items": []map[string]int{{"product_id": 1 + rand.IntN(10000), "quantity": 1}}}
	key := []string{"Idempotency-Key", fmt.Sprintf("contract-%d", suffix)}
	c.do(call{method: "POST", path: "/api/orders", body: order, want: 401})
	c.do(call{method: "POST", path: "/api/orders", token: customer, body: map[string]any{"items": []any{}}, want: 400})
	placed := c.do(call{method: "POST", path: "/api/orders", token: customer, body: order, header: key, want: 202})
	replay := c.do(call{method: "POST", path: "/api/orders", token: customer, body: order, header: key, want: 202})
	if replay.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(replay.body, placed.body) {
		t.Errorf("a replay answered %s (%s), want the first order again", replay.body, replay.header.Get("Idempotent-Replayed"))
	}
	c.do(call{method: "POST", path: "/api/orders", token: customer, header: key, want: 422,
		body: map[string]any{"items": []map[string]int{{"product_id": 1, "quantity": 7}}}})
	location := placed.header.Get("Location")
	c.do(call{method: "GET", path: location + "?wait=5s", token: customer, want: 200})
	c.do(call{method: "GET", path: location, token: other, want: 404})
	c.do(call{method: "GET", path: location + "?wait=soon", token: customer, want: 400})
	c.do(call{method: "GET", path: "/api/orders?limit=1", token: customer, want: 200})
	c.do(call{method: "GET", path: "/api/orders?limit=0", token: customer, want: 400})
	c.do(call{method: "GET", path: "/api/orders?scope=all&limit=2", token: customer, want: 403})
	c.do(call{method: "GET", path: "/api/orders?scope=all&limit=2", token: admin, want: 200})
}
