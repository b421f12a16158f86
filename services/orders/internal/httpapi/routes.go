// Package httpapi is the orders API's HTTP surface; routes.go lists all of it.
package httpapi

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// Mount adds the orders API to r. It trusts the caller in infra/identity's headers: the
// service is reached only through the gateway, which verifies the JWT and
// strips those headers from clients.
func Mount(r *gin.Engine, svc *orders.Service, log *slog.Logger) {
	h := &handlers{svc: svc, log: log}
	api := r.Group("/api/orders", h.identity)
	api.POST("", h.place)
	api.GET("", h.list)    // own orders; ?scope=all: every shard (admin)
	api.GET("/:id", h.get) // ?wait=5s long-polls until the order is final
}
