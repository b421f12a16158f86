package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// serviceEnv is the environment one Go service starts with: the caller's
// environment (so any service setting can be overridden from the shell)
// with the stack's addresses on top.
func (e *environment) serviceEnv(c topology.Component) []string {
	ep := e.endpoints()
	set := map[string]string{
		"SERVICE_INSTANCE_ID":         c.Name,
		"OTEL_SERVICE_NAME":           c.Binary,
		"OTEL_EXPORTER_OTLP_ENDPOINT": ep.OTLPEndpoint,
		"SCALESHOP_MODE":              e.envOr("SCALESHOP_MODE", "dev"),
		"HTTP_ADDR":                   e.stack.Addr(c.Name, "http"),
	}
	switch c.Binary {
	case "catalog":
		set["CATALOG_PRIMARY_DSN"] = ep.CatalogPrimaryDSN
		set["CATALOG_REPLICA_DSN"] = ep.CatalogReplicaDSN
		set["MEMCACHED_SERVERS"] = strings.Join(ep.MemcachedServers, ",")
	case "orders", "worker":
		for shard, dsn := range ep.OrdersShardDSNs {
			set[fmt.Sprintf("ORDERS_SHARD_%d_DSN", shard)] = dsn
		}
		set["KAFKA_BROKERS"] = strings.Join(ep.KafkaBrokers, ",")
		set["CATALOG_URLS"] = strings.Join(ep.CatalogURLs, ",")
	case "console":
		set["GATEWAY_URL"] = ep.GatewayURL
		set["GATEWAY_ADMIN_URL"] = ep.GatewayAdminURL
		set["JAEGER_QUERY_URL"] = ep.JaegerQueryURL
		set["STACK_MANIFEST"] = e.manifestPath()
		// The control socket is what Break it sends its actions to.
		set["STACK_STATE_DIR"] = e.stateDir
		set["PROMETHEUS_URL"] = ep.PrometheusURL
	case "gateway":
		delete(set, "HTTP_ADDR")
		set["GATEWAY_ADDR"] = e.stack.Addr(c.Name, "http")
		set["GATEWAY_ADMIN_ADDR"] = e.stack.Addr(c.Name, "admin")
		set["CATALOG_URLS"] = strings.Join(ep.CatalogURLs, ",")
		set["ORDERS_URLS"] = strings.Join(ep.OrdersURLs, ",")
	}
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, overridden := set[k]; !overridden {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// endpoints lists where clients reach the stack.
func (e *environment) endpoints() topology.Endpoints {
	s := e.stack
	urls := func(binary string) []string {
		var out []string
		for _, c := range s.Clones(binary) {
			out = append(out, "http://"+s.Addr(c.Name, "http"))
		}
		return out
	}
	ep := topology.Endpoints{
		ConsoleURL:        "http://" + s.Addr(topology.Console, "http"),
		GatewayURL:        "http://" + s.Addr(topology.Gateway, "http"),
		GatewayAdminURL:   "http://" + s.Addr(topology.Gateway, "admin"),
		CatalogURLs:       urls("catalog"),
		OrdersURLs:        urls("orders"),
		WorkerURLs:        urls("worker"),
		JaegerQueryURL:    "http://" + s.Addr(topology.JaegerAllInOne, "query"),
		PrometheusURL:     "http://" + s.Addr(topology.PrometheusServer, "http"),
		OTLPEndpoint:      "http://" + s.Addr(topology.JaegerAllInOne, "otlp-grpc"),
		CatalogPrimaryDSN: e.appDSN(topology.PGCatalogPrimary, "catalog"),
		CatalogReplicaDSN: e.appDSN(topology.PGCatalogReplica, "catalog"),
		AdminDSNs:         map[string]string{},
		MemcachedServers:  []string{s.Addr(topology.Memcached1, "memcache"), s.Addr(topology.Memcached2, "memcache")},
		KafkaBrokers:      []string{s.Addr(topology.KafkaBroker, "broker")},
	}
	for _, c := range s.Components {
		if c.Kind == topology.Postgres {
			ep.AdminDSNs[c.Name] = e.adminDSN(c.Name, "postgres")
		}
	}
	for shard := range topology.LogicalShards {
		ep.OrdersShardDSNs = append(ep.OrdersShardDSNs,
			e.appDSN(topology.ShardServer(shard), topology.ShardDatabase(shard)))
	}
	return ep
}
