package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzhttp"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// Headers of the read path and of read-your-writes.
const (
	// HeaderToken carries a write's consistency token (the primary's WAL
	// position after the commit). Sent back on a read, it guarantees the
	// read sees that write.
	HeaderToken = "X-Consistency-Token"
	// HeaderServedFrom says what answered a read: cache, replica or primary.
	HeaderServedFrom = "X-Served-From"
	// HeaderQueries is the number of SQL statements the request sent.
	HeaderQueries = "X-DB-Queries"
)

const maxBody = 64 << 10

type queryCounterKey struct{}

// countQueries gives the request a query counter and records the total.
func (a *API) countQueries(c *gin.Context) {
	ctx, n := catalog.WithQueryCounter(c.Request.Context())
	c.Request = c.Request.WithContext(ctx)
	c.Set(queryCounterKey{}, n)
	c.Next()
	if route := c.FullPath(); route != "" {
		a.queries.WithLabelValues(route).Observe(float64(n.Load()))
	}
}

// stamp sets the headers every answer carries; call it before the body.
func stamp(c *gin.Context) {
	if v, ok := c.Get(queryCounterKey{}); ok {
		c.Header(HeaderQueries, strconv.FormatInt(v.(*atomic.Int64).Load(), 10))
	}
}

func (a *API) fail(c *gin.Context, err error) {
	stamp(c)
	httpserver.WriteError(c, a.log, err)
}

// requireAdmin lets only admins write: no identity is 401, another role 403.
func requireAdmin(a *API) gin.HandlerFunc {
	return func(c *gin.Context) {
		caller, ok := identity.From(c.Request.Header)
		switch {
		case !ok:
			c.Header("WWW-Authenticate", `Bearer realm="scaleshop"`)
			a.fail(c, fmt.Errorf("%w: sign in to change the catalog", problem.ErrUnauthorized))
		case !caller.IsAdmin():
			a.fail(c, fmt.Errorf("%w: only admins change the catalog", problem.ErrForbidden))
		default:
			c.Next()
		}
	}
}

func invalid(field, detail string) error {
	return (&problem.ValidationError{}).Add(field, detail)
}

// readOpts reads the consistency wishes of a read request.
func readOpts(c *gin.Context) (catalog.ReadOpts, error) {
	var o catalog.ReadOpts
	if t := c.GetHeader(HeaderToken); t != "" {
		lsn, err := catalog.ParseLSN(t)
		if err != nil {
			return o, invalid(HeaderToken, err.Error())
		}
		o.After = lsn
	}
	o.NoCache = strings.Contains(strings.ToLower(c.GetHeader("Cache-Control")), "no-cache")
	return o, nil
}

func pathID(c *gin.Context) (int64, error) {
	id, ok := catalog.ParseID(c.Param("id"))
	if !ok {
		return 0, invalid("id", "a positive integer product id")
	}
	return id, nil
}

// serveRead answers a GET with caching headers and the body as it was
// encoded (by the cache, or from the row), or 304 when the client's copy is
// current.
func (a *API) serveRead(c *gin.Context, e catalog.Encoded, src catalog.Source, o catalog.ReadOpts) {
	stamp(c)
	h := c.Writer.Header()
	h["Etag"] = []string{e.ETag}
	h[HeaderServedFrom] = []string{string(src)}
	// Added to, not set: Compress has already said it varies by encoding.
	h["Vary"] = append(h["Vary"], HeaderToken)
	if !strings.HasPrefix(e.ETag, "W/") {
		h[gzhttp.HeaderNoCompression] = noCompression
	}
	if o.After > 0 {
		// The client wants at least this fresh: no shared cache should answer.
		h["Cache-Control"] = noCache
	} else {
		h["Cache-Control"] = []string{a.cacheControl}
	}
	if etagMatches(c.GetHeader("If-None-Match"), e.ETag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, jsonType, e.Body)
}

// Header values shared by every read (never modified after start).
var noCache = []string{"no-cache"}

// jsonType is what gin's c.JSON sends, so an encoded body reads the same.
const jsonType = "application/json; charset=utf-8"

// etagMatches applies If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

func (a *API) get(c *gin.Context) {
	id, err := pathID(c)
	a.read(c, err, func(ctx context.Context, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
		return a.reads.GetEncoded(ctx, id, o)
	})
}

func (a *API) list(c *gin.Context) {
	q, err := catalog.ParseListQuery(c.Query("category"), c.Query("q"), c.Query("limit"), c.Query("cursor"))
	a.read(c, err, func(ctx context.Context, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
		return a.reads.ListEncoded(ctx, q, o)
	})
}

// read serves a cacheable GET: parseErr is the handler's own input check;
// load returns the encoded body and what served it.
func (a *API) read(c *gin.Context, parseErr error,
	load func(context.Context, catalog.ReadOpts) (catalog.Encoded, catalog.Source, error)) {
	o, err := readOpts(c)
	if err = errors.Join(parseErr, err); err != nil {
		a.fail(c, err)
		return
	}
	e, src, err := load(c.Request.Context(), o)
	if err != nil {
		c.Header(HeaderServedFrom, string(src))
		a.fail(c, err)
		return
	}
	a.serveRead(c, e, src, o)
}

// productBody is what POST and PUT accept: the product's fields. id,
// version and updated_at are allowed so a client can send back what it
// read; version doubles as the precondition when If-Match is absent.
type productBody struct {
	catalog.Input
	ID        json.RawMessage `json:"id"`
	Version   *int64          `json:"version"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

// decode reads one JSON body of at most maxBody bytes into v, the way every
// service does (unknown fields rejected, the bad field named).
func decode(c *gin.Context, v any) error {
	return httpserver.DecodeJSON(c.Writer, c.Request, maxBody, v)
}

func (a *API) writeHeaders(c *gin.Context, token catalog.LSN) {
	stamp(c)
	c.Header("Cache-Control", "no-store")
	if token > 0 {
		c.Header(HeaderToken, token.String())
	}
}

func (a *API) create(c *gin.Context) {
	var body productBody
	if err := decode(c, &body); err != nil {
		a.fail(c, err)
		return
	}
	in := body.Input
	if err := in.Validate(); err != nil {
		a.fail(c, err)
		return
	}
	p, token, err := a.store.Create(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeHeaders(c, token)
	c.Header("Location", "/api/products/"+strconv.FormatInt(p.ID, 10))
	c.Header("ETag", p.ETag())
	c.JSON(http.StatusCreated, p)
}

func (a *API) update(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	pre, err := readPrecondition(c.Request.Header.Values("If-Match"), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	var body productBody
	if err := decode(c, &body); err != nil {
		a.fail(c, err)
		return
	}
	var bodyVersion int64
	if body.Version != nil {
		if *body.Version < 1 {
			a.fail(c, invalid("version", "a positive integer"))
			return
		}
		bodyVersion = *body.Version
	}
	in := body.Input
	if err := in.Validate(); err != nil {
		a.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	var p catalog.Product
	var token catalog.LSN
	err = pre.apply(bodyVersion, func(ifVersion int64) (err error) {
		p, token, err = a.store.Update(ctx, id, in, ifVersion)
		return err
	}, a.exists(ctx, id))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeHeaders(c, token)
	c.Header("ETag", p.ETag())
	c.JSON(http.StatusOK, p)
}

func (a *API) delete(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	pre, err := readPrecondition(c.Request.Header.Values("If-Match"), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	var token catalog.LSN
	err = pre.apply(0, func(ifVersion int64) (err error) {
		token, err = a.store.Delete(ctx, id, ifVersion)
		return err
	}, a.exists(ctx, id))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeHeaders(c, token)
	c.Status(http.StatusNoContent)
}

// exists checks that product id is there (a "not found" is the primary's
// word, so a lagging replica cannot make it 404).
func (a *API) exists(ctx context.Context, id int64) func() error {
	return func() error {
		_, _, err := a.store.Get(ctx, id, catalog.ReadOpts{NoCache: true})
		return err
	}
}

func (a *API) getMany(c *gin.Context) {
	ids, err := catalog.ParseIDs(c.Query("ids"))
	o, optsErr := readOpts(c)
	if err = errors.Join(err, optsErr); err != nil {
		a.fail(c, err)
		return
	}
	items, src, err := a.store.GetMany(c.Request.Context(), ids, o)
	if err != nil {
		a.fail(c, err)
		return
	}
	if items == nil {
		items = []catalog.Product{}
	}
	stamp(c)
	c.Header(HeaderServedFrom, string(src))
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (a *API) reserve(c *gin.Context) {
	var req catalog.ReservationRequest
	if err := decode(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if err := req.Validate(); err != nil {
		a.fail(c, err)
		return
	}
	res, _, err := a.store.Reserve(c.Request.Context(), req)
	if err != nil {
		a.fail(c, err)
		return
	}
	stamp(c)
	c.JSON(http.StatusOK, res)
}

func (a *API) release(c *gin.Context) {
	orderID := c.Param("order_id")
	if !catalog.ValidOrderID(orderID) {
		a.fail(c, invalid("order_id", "1 to 128 characters of valid UTF-8"))
		return
	}
	res, _, err := a.store.Release(c.Request.Context(), orderID)
	if err != nil {
		a.fail(c, err)
		return
	}
	stamp(c)
	c.JSON(http.StatusOK, res)
}
