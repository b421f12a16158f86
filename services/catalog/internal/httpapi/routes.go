// Package httpapi is the catalog's HTTP surface: routes.go lists every
// endpoint; the handlers translate HTTP to catalog.Store calls and back.
package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// API serves the catalog over HTTP.
type API struct {
	store        catalog.Store
	reads        encodedReader
	log          *slog.Logger
	cacheControl string // of anonymous reads: "public, max-age=N"
	queries      *prometheus.HistogramVec
}

// encodedReader answers the two public reads in wire form. The memcached
// cache implements it (a hit is the stored response bytes); any other store
// is wrapped so it encodes what it read.
type encodedReader interface {
	GetEncoded(ctx context.Context, id int64, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error)
	ListEncoded(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error)
}

// encoding makes any Store an encodedReader.
type encoding struct{ catalog.Store }

func (s encoding) GetEncoded(ctx context.Context, id int64, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	p, src, err := s.Get(ctx, id, o)
	if err != nil {
		return catalog.Encoded{}, src, err
	}
	return catalog.EncodeProduct(p), src, nil
}

func (s encoding) ListEncoded(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	page, src, err := s.List(ctx, q, o)
	if err != nil {
		return catalog.Encoded{}, src, err
	}
	return catalog.EncodePage(page), src, nil
}

// Config tunes the HTTP layer.
type Config struct {
	// MaxAge is the Cache-Control max-age of product and list reads: how
	// long a browser or CDN may reuse them without asking.
	MaxAge time.Duration
}

// New builds the API over store (the cached store, or the plain one when the
// cache is disabled).
func New(store catalog.Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) *API {
	queries := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "catalog_db_queries_per_request",
		Help:    "SQL statements one request sent (0 when the cache answered), by route.",
		Buckets: []float64{0, 1, 2, 3, 5, 8, 13, 21},
	}, []string{"route"})
	reg.MustRegister(queries)
	reads, ok := store.(encodedReader)
	if !ok {
		reads = encoding{store}
	}
	return &API{store: store, reads: reads, log: log, queries: queries,
		cacheControl: "public, max-age=" + strconv.Itoa(int(cfg.MaxAge.Seconds()))}
}

// Mount adds the whole surface to r.
//
// Public (routed by the gateway under /api):
//
//	GET    /api/products?category=&q=&limit=&cursor=  list, cursor pagination
//	GET    /api/products/{id}                         one product (ETag, 304)
//	POST   /api/products                              admin: create (201 + Location)
//	PUT    /api/products/{id}                         admin: replace (If-Match -> 412)
//	DELETE /api/products/{id}                         admin: delete (204)
//
// Internal (for the orders service; the gateway never routes /internal):
//
//	GET    /internal/products?ids=1,2,3               many products, through the cache
//	POST   /internal/reservations                     reserve an order's stock, idempotent
//	DELETE /internal/reservations/{order_id}          give it back, idempotent
func (a *API) Mount(r gin.IRouter) {
	r.Use(a.countQueries)

	r.GET("/api/products", a.list)
	r.GET("/api/products/:id", a.get)
	admin := r.Group("/api/products", requireAdmin(a))
	admin.POST("", a.create)
	admin.PUT("/:id", a.update)
	admin.DELETE("/:id", a.delete)

	r.GET("/internal/products", a.getMany)
	r.POST("/internal/reservations", a.reserve)
	r.DELETE("/internal/reservations/:order_id", a.release)
}
