// Package httpapi is the catalog's HTTP surface: routes.go lists every
// endpoint; the handlers translate HTTP to catalog.Store calls and back.
package httpapi

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// API serves the catalog over HTTP.
type API struct {
	store   catalog.Store
	log     *slog.Logger
	maxAge  time.Duration
	queries *prometheus.HistogramVec
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
	return &API{store: store, log: log, maxAge: cfg.MaxAge, queries: queries}
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
