package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	settings "github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/httpapi"
)

// The floor is the catalog's own request path — the shared engine (otelgin,
// RED metrics, recovery), the catalog's router and read handler, the same
// headers and bytes — over a cache that costs nothing: product bodies held
// in this process's memory. Run beside the real processes, it shows the
// best product-hit-to-/healthz ratio any cache design could reach with
// this request path, and so how much of the gap the memcached round trip
// is and how much the instrumented request itself.
//
// It is catalogbench started again with floorEnv set, so its CPU per
// request is read from its own process like the catalog's.
const floorEnv = "CATALOGBENCH_FLOOR" // "<source catalog URL> <products>"

func serveFloor(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	source, n, err := parseFloorSpec(getenv(floorEnv))
	if err != nil {
		return err
	}
	env := settings.New(getenv)
	addr := env.String("HTTP_ADDR", "127.0.0.1:0")
	tel, err := telemetry.Setup(ctx, telemetry.ReadConfig(env, "catalog", "catalog-floor"), stdout)
	if err != nil {
		return err
	}
	defer tel.Flush(ctx, 5*time.Second)
	if err := env.Err(); err != nil {
		return err
	}
	store, err := loadMemoryStore(ctx, source, n)
	if err != nil {
		return err
	}
	r := httpserver.NewEngine(tel)
	httpserver.MountHealth(r, tel.Registry, time.Second)
	httpapi.New(store, httpapi.Config{MaxAge: 5 * time.Second}, tel.Logger, tel.Registry).Mount(r)
	return httpserver.Serve(ctx, httpserver.Server(addr, r), 5*time.Second)
}

func parseFloorSpec(spec string) (source string, products int, err error) {
	source, count, _ := strings.Cut(spec, " ")
	products, err = strconv.Atoi(count)
	if source == "" || err != nil || products < 1 {
		return "", 0, fmt.Errorf("%s=%q: want \"<catalog URL> <products>\"", floorEnv, spec)
	}
	return source, products, nil
}

// memoryStore answers product reads from a map filled at start; the bench
// sends it nothing else (the embedded nil Store would panic, and the
// engine's recovery would answer 500, which the bench counts as errors).
type memoryStore struct {
	catalog.Store
	products map[int64]catalog.Encoded
}

// loadMemoryStore copies products 1..n, body and ETag, from a running
// catalog, so the floor sends the very bytes the real one does.
func loadMemoryStore(ctx context.Context, source string, n int) (*memoryStore, error) {
	s := &memoryStore{products: make(map[int64]catalog.Encoded, n)}
	for id := int64(1); id <= int64(n); id++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, source+"/api/products/"+strconv.FormatInt(id, 10), nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("floor: GET product %d from %s: %s", id, source, resp.Status)
		}
		s.products[id] = catalog.Encoded{Body: body, ETag: resp.Header.Get("ETag")}
	}
	return s, nil
}

func (s *memoryStore) GetEncoded(_ context.Context, id int64, _ catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	if e, ok := s.products[id]; ok {
		return e, catalog.FromCache, nil
	}
	return catalog.Encoded{}, catalog.FromCache, fmt.Errorf("floor: product %d was not loaded", id)
}

func (s *memoryStore) ListEncoded(context.Context, catalog.ListQuery, catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	return catalog.Encoded{}, catalog.FromCache, fmt.Errorf("floor: list pages are not served")
}
