package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/httpapi"
)

// fakeStore is an in-memory catalog.Store: enough behaviour for the HTTP
// layer (versions, sku uniqueness, reservations) and a switch to fail.
type fakeStore struct {
	mu           sync.Mutex
	products     map[int64]catalog.Product
	reservations map[string]catalog.Reservation
	nextID       int64
	down         bool // every call fails as an unreachable database would
	lastOpts     catalog.ReadOpts
}

var _ catalog.Store = (*fakeStore)(nil)

func newFakeStore(n int) *fakeStore {
	s := &fakeStore{products: map[int64]catalog.Product{}, reservations: map[string]catalog.Reservation{}}
	for i := 1; i <= n; i++ {
		s.nextID++
		s.products[s.nextID] = catalog.Product{ID: s.nextID, Version: 1, UpdatedAt: time.Unix(0, 0).UTC(),
			Input: catalog.Input{SKU: fmt.Sprintf("SKU-%d", i), Name: fmt.Sprintf("Item %d", i),
				Category: []string{"books", "toys"}[i%2], PriceCents: int64(100 * i), Currency: "USD",
				Stock: 5, Attributes: []byte(`{}`)}}
	}
	return s
}

var errDown = fmt.Errorf("%w: database unreachable", problem.ErrUnavailable)

func (s *fakeStore) Get(_ context.Context, id int64, o catalog.ReadOpts) (catalog.Product, catalog.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastOpts = o
	if s.down {
		return catalog.Product{}, "", errDown
	}
	p, ok := s.products[id]
	if !ok {
		return p, catalog.FromReplica, fmt.Errorf("%w: no product %d", problem.ErrNotFound, id)
	}
	return p, catalog.FromReplica, nil
}

func (s *fakeStore) GetMany(_ context.Context, ids []int64, _ catalog.ReadOpts) ([]catalog.Product, catalog.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, "", errDown
	}
	var out []catalog.Product
	for _, id := range ids {
		if p, ok := s.products[id]; ok {
			out = append(out, p)
		}
	}
	return out, catalog.FromCache, nil
}

func (s *fakeStore) List(_ context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Page, catalog.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastOpts = o
	if s.down {
		return catalog.Page{}, "", errDown
	}
	var page catalog.Page
	for id := q.AfterID + 1; id <= s.nextID; id++ {
		p, ok := s.products[id]
		if !ok || (q.Category != "" && p.Category != q.Category) ||
			(q.Q != "" && !strings.Contains(strings.ToLower(p.Name+p.Description), strings.ToLower(q.Q))) {
			continue
		}
		if len(page.Items) == q.Limit {
			page.NextCursor = catalog.EncodeCursor(page.Items[q.Limit-1].ID)
			break
		}
		page.Items = append(page.Items, p)
	}
	return page, catalog.FromReplica, nil
}

func (s *fakeStore) skuTaken(sku string, except int64) bool {
	for id, p := range s.products {
		if p.SKU == sku && id != except {
			return true
		}
	}
	return false
}

// storable applies what Postgres would refuse with an error the API maps to
// 500: text with NUL or invalid UTF-8, attributes that are not a JSON object
// or hold \u0000, numbers outside bigint. Validation must have caught all.
func storable(in catalog.Input) error {
	for _, s := range []string{in.SKU, in.Name, in.Description, in.Category, in.Currency} {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			return fmt.Errorf("invalid byte sequence for encoding UTF8")
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(in.Attributes, &obj); err != nil || obj == nil || bytes.Contains(in.Attributes, []byte(`\u0000`)) {
		return fmt.Errorf("attributes %q: not a storable jsonb object", in.Attributes)
	}
	if in.PriceCents < 0 || in.Stock < 0 || len(in.Currency) != 3 {
		return fmt.Errorf("check constraint violated")
	}
	return nil
}

func (s *fakeStore) Create(_ context.Context, in catalog.Input) (catalog.Product, catalog.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return catalog.Product{}, 0, errDown
	}
	if err := storable(in); err != nil {
		return catalog.Product{}, 0, err
	}
	if s.skuTaken(in.SKU, 0) {
		return catalog.Product{}, 0, fmt.Errorf("%w: sku taken", problem.ErrConflict)
	}
	s.nextID++
	p := catalog.Product{ID: s.nextID, Input: in, Version: 1, UpdatedAt: time.Now().UTC()}
	s.products[p.ID] = p
	return p, catalog.LSN(0x1_0000_00AB), nil
}

func (s *fakeStore) check(id, ifVersion int64) (catalog.Product, error) {
	if s.down {
		return catalog.Product{}, errDown
	}
	p, ok := s.products[id]
	if !ok {
		return p, fmt.Errorf("%w: no product %d", problem.ErrNotFound, id)
	}
	if ifVersion > 0 && p.Version != ifVersion {
		return p, fmt.Errorf("%w: stale version", problem.ErrPreconditionFailed)
	}
	return p, nil
}

func (s *fakeStore) Update(_ context.Context, id int64, in catalog.Input, ifVersion int64) (catalog.Product, catalog.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.check(id, ifVersion)
	if err != nil {
		return p, 0, err
	}
	if err := storable(in); err != nil {
		return catalog.Product{}, 0, err
	}
	if s.skuTaken(in.SKU, id) {
		return catalog.Product{}, 0, fmt.Errorf("%w: sku taken", problem.ErrConflict)
	}
	p.Input, p.Version = in, p.Version+1
	s.products[id] = p
	return p, catalog.LSN(0x1_0000_00CD), nil
}

func (s *fakeStore) Delete(_ context.Context, id int64, ifVersion int64) (catalog.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.check(id, ifVersion); err != nil {
		return 0, err
	}
	delete(s.products, id)
	return catalog.LSN(0x1_0000_00EF), nil
}

func (s *fakeStore) Reserve(_ context.Context, r catalog.ReservationRequest) (catalog.Reservation, []catalog.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return catalog.Reservation{}, nil, errDown
	}
	if res, ok := s.reservations[r.OrderID]; ok {
		return res, nil, nil
	}
	res := catalog.Reservation{OrderID: r.OrderID, Status: catalog.StatusReserved, Items: r.Items}
	for _, it := range r.Items {
		if p, ok := s.products[it.ProductID]; !ok || p.Stock < it.Quantity {
			res.Status = catalog.StatusOutOfStock
		}
	}
	if res.Status == catalog.StatusReserved {
		for _, it := range r.Items {
			p := s.products[it.ProductID]
			p.Stock -= it.Quantity
			s.products[it.ProductID] = p
		}
	}
	s.reservations[r.OrderID] = res
	return res, nil, nil
}

func (s *fakeStore) Release(_ context.Context, orderID string) (catalog.Reservation, []catalog.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return catalog.Reservation{}, nil, errDown
	}
	if res, ok := s.reservations[orderID]; ok && res.Status == catalog.StatusReserved {
		for _, it := range res.Items {
			p := s.products[it.ProductID]
			p.Stock += it.Quantity
			s.products[it.ProductID] = p
		}
		res.Status = catalog.StatusReleased
		s.reservations[orderID] = res
	}
	return catalog.Reservation{OrderID: orderID, Status: catalog.StatusReleased}, nil, nil
}

// newRouter is the real router over store, as main builds it.
func newRouter(t testing.TB, store catalog.Store) *gin.Engine {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "catalog", Instance: "catalog-test"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := httpserver.NewEngine(tel)
	httpapi.New(store, httpapi.Config{MaxAge: 5 * time.Second}, tel.Logger, tel.Registry).Mount(r)
	return r
}

type request struct {
	method, path, body string
	header             map[string]string
}

func do(r http.Handler, req request) *httptest.ResponseRecorder {
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	hr := httptest.NewRequest(req.method, req.path, body)
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, hr)
	return w
}
