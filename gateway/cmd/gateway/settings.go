package main

import (
	"time"

	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

type settings struct {
	addr, adminAddr string
	// observeAddr serves the admin API's read-only part and /metrics; ""
	// (the native default) serves no observe port.
	observeAddr     string
	catalog, orders []string
	devMode         bool
	signingKey      string
	devTokenTTL     time.Duration

	policies    map[string]balancer.Policy
	poolOptions balancer.Options
	dnsInterval time.Duration

	tryTimeout, requestTimeout time.Duration
	maxAttempts, retryMin      int
	retryRatio                 float64
	maxBody                    int64
	rateLimit                  float64
	rateBurst                  int
	accessLogSample            float64

	tel telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:      env.String("GATEWAY_ADDR", "127.0.0.1:8080"),
		adminAddr: env.String("GATEWAY_ADMIN_ADDR", "127.0.0.1:9080"),
		// Read-only, so it may face the network: on Kubernetes the console
		// and Prometheus read it from their own pods.
		observeAddr: env.String("GATEWAY_OBSERVE_ADDR", ""),
		// Members: http://host:port, or dns+http://name:port for a name
		// re-resolved periodically (docker compose --scale).
		catalog:     env.List("CATALOG_URLS", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}),
		orders:      env.List("ORDERS_URLS", []string{"http://127.0.0.1:8091", "http://127.0.0.1:8092"}),
		devMode:     env.String("SCALESHOP_MODE", "dev") == "dev",
		signingKey:  env.Secret("JWT_SIGNING_KEY", auth.DevSigningKey),
		devTokenTTL: env.Duration("GATEWAY_DEV_TOKEN_TTL", 24*time.Hour),
		policies: map[string]balancer.Policy{
			"catalog": balancer.Policy(env.String("GATEWAY_CATALOG_POLICY", string(balancer.P2CEWMA))),
			"orders":  balancer.Policy(env.String("GATEWAY_ORDERS_POLICY", string(balancer.P2CEWMA))),
		},
		poolOptions: balancer.Options{
			HealthPath:     env.String("GATEWAY_HEALTH_PATH", "/readyz"),
			HealthInterval: env.Duration("GATEWAY_HEALTH_INTERVAL", 2*time.Second),
			HealthTimeout:  env.Duration("GATEWAY_HEALTH_TIMEOUT", time.Second),
			UnhealthyAfter: env.Int("GATEWAY_UNHEALTHY_AFTER", 2),
			HealthyAfter:   env.Int("GATEWAY_HEALTHY_AFTER", 2),
			EjectAfter:     env.Int("GATEWAY_EJECT_AFTER", 5),
			EjectBase:      env.Duration("GATEWAY_EJECT_BASE", time.Second),
			EjectMax:       env.Duration("GATEWAY_EJECT_MAX", 30*time.Second),
			DecayTime:      env.Duration("GATEWAY_EWMA_DECAY", 2*time.Second),
		},
		dnsInterval:     env.Duration("GATEWAY_DNS_INTERVAL", 5*time.Second),
		tryTimeout:      env.Duration("GATEWAY_TRY_TIMEOUT", 5*time.Second),
		requestTimeout:  env.Duration("GATEWAY_REQUEST_TIMEOUT", 15*time.Second),
		maxAttempts:     env.Int("GATEWAY_MAX_ATTEMPTS", 3),
		retryRatio:      env.Float("GATEWAY_RETRY_BUDGET", 0.2),
		retryMin:        env.Int("GATEWAY_RETRY_MIN", 10),
		maxBody:         int64(env.Int("GATEWAY_MAX_BODY_BYTES", 1<<20)),
		rateLimit:       env.Float("GATEWAY_RATE_LIMIT", 1000),
		rateBurst:       env.Int("GATEWAY_RATE_BURST", 2000),
		accessLogSample: env.Float("GATEWAY_ACCESS_LOG_SAMPLE", 0.01),
	}
	s.tel = telemetry.ReadConfig(env, "gateway", telemetry.DefaultInstance("gateway", s.addr))

	if !s.devMode && s.signingKey == auth.DevSigningKey {
		env.Fail("JWT_SIGNING_KEY is the documented dev key; set a secret key (32+ bytes) outside dev mode")
	} else if !s.devMode && len(s.signingKey) < 32 {
		env.Fail("JWT_SIGNING_KEY must be at least 32 bytes outside dev mode")
	}
	if !httpserver.Loopback(s.adminAddr) {
		env.Fail("GATEWAY_ADMIN_ADDR=%s: the admin API changes the pools, so it listens on loopback only", s.adminAddr)
	}
	for pool, p := range s.policies {
		if _, err := balancer.NewPool(pool, nil, balancer.Options{Policy: p}); err != nil {
			env.Fail("%v", err)
		}
	}
	if s.retryRatio < 0 || s.retryRatio > 1 {
		env.Fail("GATEWAY_RETRY_BUDGET=%v must be within [0,1]", s.retryRatio)
	}
	if s.maxAttempts < 1 {
		env.Fail("GATEWAY_MAX_ATTEMPTS must be at least 1")
	}
	if s.tryTimeout <= 0 || s.requestTimeout < s.tryTimeout {
		env.Fail("want 0 < GATEWAY_TRY_TIMEOUT <= GATEWAY_REQUEST_TIMEOUT")
	}
	return s, env.Effective(), env.Err()
}
