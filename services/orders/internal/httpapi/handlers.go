package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// MaxWait bounds ?wait=. PollEvery is how often a long poll rereads the
// order without being woken: a fallback for a lost notification (or, with
// no status watcher, the polling interval).
const (
	MaxWait   = 10 * time.Second
	PollEvery = 250 * time.Millisecond
)

type handlers struct {
	svc *orders.Service
	log *slog.Logger
}

func (h *handlers) identity(c *gin.Context) {
	caller, ok := identity.From(c.Request.Header)
	if !ok {
		httpserver.WriteError(c, h.log, fmt.Errorf("no caller identity (%s): %w", identity.HeaderID, problem.ErrUnauthorized))
		return
	}
	c.Set("identity", orders.Identity{CustomerID: caller.ID, Admin: caller.IsAdmin()})
	c.Next()
}

func who(c *gin.Context) orders.Identity {
	v, _ := c.Get("identity")
	id, _ := v.(orders.Identity)
	return id
}

type placeRequest struct {
	Items []orders.Line `json:"items"`
}

// MaxBody bounds a placement request (50 lines need a few KB).
const MaxBody = 64 << 10

func (h *handlers) place(c *gin.Context) {
	var req placeRequest
	if err := httpserver.DecodeJSON(c.Writer, c.Request, MaxBody, &req); err != nil {
		httpserver.WriteError(c, h.log, err)
		return
	}
	o, created, err := h.svc.Place(c.Request.Context(), who(c), c.GetHeader("Idempotency-Key"), req.Items)
	if o != nil {
		httpserver.SpanAttrs(c, orders.ShardAttr.Int(o.ID.Shard))
	}
	if err != nil {
		httpserver.WriteError(c, h.log, err)
		return
	}
	if !created {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/api/orders/"+o.ID.String())
	// A replay answers what the first request answered: 202 and the order.
	c.JSON(http.StatusAccepted, orderJSON(o))
}

func (h *handlers) get(c *gin.Context) {
	var wait time.Duration
	if raw := c.Query("wait"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			httpserver.WriteError(c, h.log, (&problem.ValidationError{}).Add("wait", "a duration such as 5s"))
			return
		}
		wait = min(d, MaxWait)
	}
	o, err := h.svc.Wait(c.Request.Context(), who(c), c.Param("id"), wait, PollEvery)
	if err != nil {
		httpserver.WriteError(c, h.log, err)
		return
	}
	httpserver.SpanAttrs(c, orders.ShardAttr.Int(o.ID.Shard))
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, orderJSON(o))
}

func (h *handlers) list(c *gin.Context) {
	limit := 0
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > orders.MaxPage {
			httpserver.WriteError(c, h.log, (&problem.ValidationError{}).Add("limit", fmt.Sprintf("1 to %d", orders.MaxPage)))
			return
		}
		limit = n
	}
	cursor, err := orders.ParseCursor(c.Query("cursor"), h.svc.Shards())
	if err != nil {
		httpserver.WriteError(c, h.log, err)
		return
	}
	list := h.svc.List
	switch c.Query("scope") {
	case "", "own":
	case "all":
		list = h.svc.ListAll
	default:
		httpserver.WriteError(c, h.log, (&problem.ValidationError{}).Add("scope", "own or all"))
		return
	}
	rows, next, err := list(c.Request.Context(), who(c), cursor, limit)
	if err != nil {
		httpserver.WriteError(c, h.log, err)
		return
	}
	out := listJSON{Items: make([]orderBody, len(rows))}
	for i := range rows {
		out.Items[i] = orderJSON(&rows[i])
	}
	if next != nil {
		out.NextCursor = next.Encode()
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

type listJSON struct {
	Items      []orderBody `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

type orderBody struct {
	ID         string        `json:"id"`
	CustomerID string        `json:"customer_id"`
	Status     orders.Status `json:"status"`
	Reason     orders.Reason `json:"reason,omitempty"`
	Items      []orders.Item `json:"items"`
	TotalCents int64         `json:"total_cents"`
	Currency   string        `json:"currency"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

func orderJSON(o *orders.Order) orderBody {
	return orderBody{
		ID: o.ID.String(), CustomerID: o.CustomerID, Status: o.Status, Reason: o.Reason,
		Items: o.Items, TotalCents: o.TotalCents, Currency: o.Currency,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}
