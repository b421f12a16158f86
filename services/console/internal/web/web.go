// Package web is the console's HTTP surface: server-rendered pages
// (html/template, assets embedded in the binary), the few fragments their
// small scripts poll, the Break it actions, and /api/* passed to the
// gateway unchanged so the shop's requests are the browser's own,
// same-origin, and the browser's HTTP cache is the real one.
package web

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/traceview"
	"github.com/scaleshop/scaleshop/services/console/internal/overview"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// What the pages read, each declared as the little it needs.
type (
	snapshotter interface {
		Latest(ctx context.Context, maxAge time.Duration) *overview.Snapshot
	}
	metrics interface {
		Instant(ctx context.Context, query string) ([]sources.Sample, error)
		Range(ctx context.Context, query string, window, step time.Duration) ([]sources.Series, error)
	}
	traces interface {
		Services(ctx context.Context) ([]string, error)
		Operations(ctx context.Context, service string) ([]string, error)
		Search(ctx context.Context, q sources.TraceQuery) ([]sources.TraceSummary, error)
		Trace(ctx context.Context, id string) (*traceview.Trace, error)
	}
	controller interface {
		Do(ctx context.Context, action, name string) (string, error)
	}
)

// Config is what the console is wired to.
type Config struct {
	Overview snapshotter
	Metrics  metrics // nil: the stack has no Prometheus
	Traces   traces
	// Control performs Break it actions; nil (no supervisor, as in compose,
	// or not in dev mode) turns the page's buttons off.
	Control    controller
	GatewayURL *url.URL
	// JaegerUIURL, when set (compose runs the real Jaeger UI), links each
	// trace to it as well.
	JaegerUIURL string
	// JaegerNotice says why Jaeger is not there yet (its first build runs
	// in the background); "" when there is nothing to say.
	JaegerNotice func() string
	Log          *slog.Logger
	Now          func() time.Time
	// ActionTimeout bounds one Break it action (starting a clone builds it).
	ActionTimeout time.Duration
}

// Server serves the console.
type Server struct {
	cfg      Config
	pages    map[string]*template.Template
	timeline *timeline
	proxy    *httputil.ReverseProxy
}

// New parses the templates and builds the handler.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 3 * time.Minute
	}
	if cfg.JaegerNotice == nil {
		cfg.JaegerNotice = func() string { return "" }
	}
	s := &Server{cfg: cfg, pages: map[string]*template.Template{}, timeline: &timeline{now: cfg.Now}}
	for _, page := range []string{"overview", "concepts", "break", "shop", "traces", "trace"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		s.pages[page] = t
	}
	target := cfg.GatewayURL
	s.proxy = &httputil.ReverseProxy{
		// No X-Forwarded-* added, headers and body as sent, so
		// the gateway sees the browser's own conditional requests.
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = target.Scheme, target.Host
			r.Out.Host = target.Host
		},
		// One header added: after a revalidation the browser merges a 304's
		// headers into its stored response, so the shop can tell a 304 from
		// a fresh 200 by this header alone.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Console-Upstream-Status", strconv.Itoa(resp.StatusCode))
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.Log.Warn("gateway unreachable", "err", err, "path", r.URL.Path)
			writeProblem(w, problem.ErrUnavailable, "the gateway does not answer")
		},
	}
	return s, nil
}

// Handler returns the console's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.overviewPage)
	mux.HandleFunc("GET /overview/live", s.overviewLive)
	mux.HandleFunc("GET /concepts", s.conceptsPage)
	mux.HandleFunc("GET /concepts/live", s.conceptsLive)
	mux.HandleFunc("GET /break", s.breakPage)
	mux.HandleFunc("GET /break/timeline", s.timelineLive)
	mux.HandleFunc("POST /break/actions", s.breakAction)
	mux.HandleFunc("GET /shop", s.shopPage)
	mux.HandleFunc("GET /traces", s.tracesPage)
	mux.HandleFunc("GET /traces/{id}", s.tracePage)
	mux.Handle("/api/", s.proxy)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ready\n")) })

	// Another site's page must not be able to stop a database through the
	// visitor's browser: state-changing requests from another origin are
	// refused (Sec-Fetch-Site, else Origin against Host), /api/* included.
	// A request with neither header is not a browser's and passes.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cfg.Log.Warn("cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		writeProblem(w, problem.ErrForbidden, "cross-origin request refused: the console's actions can only be sent from its own pages")
	}))
	return cop.Handler(mux)
}
