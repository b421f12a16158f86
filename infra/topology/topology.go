// Package topology is the single description of the stack's processes and
// ports (the topology table of docs/architecture.md). The native supervisor starts it, the
// tests find their endpoints in it, and a test holds docker-compose.yml to it.
package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind says what runs a component.
type Kind string

// The component kinds.
const (
	Postgres  Kind = "postgres"
	Memcached Kind = "memcached"
	Kafka     Kind = "kafka"
	Jaeger    Kind = "jaeger"
	// Prometheus scrapes every process's /metrics and records the rules
	// in infra/local/prometheus/rules.yml.
	Prometheus Kind = "prometheus"
	Service    Kind = "service" // one of this module's Go binaries
)

// Port is one listening port, overridable by its environment variable.
type Port struct {
	Name    string // "http", "admin", "otlp-grpc", ...
	Env     string // GATEWAY_PORT
	Default int    // 8080
}

// Component is one process of the stack.
type Component struct {
	Name      string // unique: "catalog-1", "pg-catalog-replica"
	Kind      Kind
	Binary    string // Go services: the cmd under this module ("catalog", "orders", "worker", "gateway")
	Ports     []Port
	DependsOn []string
	// CPUs is the CPU quota, in cores, that the component's clone runs
	// under by default (CPUsEnv overrides it); 0: unbounded.
	CPUs float64
}

// DefaultCloneCPUs is the CPU quota of every catalog, orders API and worker
// clone: each is a small machine of its own, so adding a clone adds real
// capacity until the shared machine runs out. docs/architecture.md says
// why half a core, and docker-compose.yml gives each clone the same
// `cpus:` (a test holds it to this).
const DefaultCloneCPUs = 0.5

// CPUsEnv names the variable that sets the CPU quota of binary's clones
// ("catalog": CATALOG_CPUS), "" for a binary that runs unbounded.
func CPUsEnv(binary string) string {
	switch binary {
	case "catalog", "orders", "worker":
		return strings.ToUpper(binary) + "_CPUS"
	}
	return ""
}

// Well-known component names.
const (
	PGCatalogPrimary = "pg-catalog-primary"
	PGCatalogReplica = "pg-catalog-replica"
	PGOrdersA        = "pg-orders-a"
	PGOrdersB        = "pg-orders-b"
	Memcached1       = "memcached-1"
	Memcached2       = "memcached-2"
	KafkaBroker      = "kafka"
	JaegerAllInOne   = "jaeger"
	PrometheusServer = "prometheus"
	Gateway          = "gateway"
	Console          = "console"
)

// Logical order shards: 0-3 on server A, 4-7 on server B.
const (
	LogicalShards   = 8
	ShardsPerServer = 4
)

// Kafka topics the services need.
const (
	TopicOrdersPlaced = "orders.placed"
	TopicOrdersStatus = "orders.status"
	// TopicOrdersPlacedDLQ holds orders.placed messages the workers gave up
	// on after bounded retries, with the error in a header; a command replays them.
	TopicOrdersPlacedDLQ = "orders.placed.dlq"
	TopicPartitions      = 6
)

// Topics lists every topic the stack creates, each with TopicPartitions.
func Topics() []string {
	return []string{TopicOrdersPlaced, TopicOrdersStatus, TopicOrdersPlacedDLQ}
}

// Native returns the whole stack in dependency order: each component comes
// after everything it depends on.
//
// No service depends on Jaeger: a service exports its spans once Jaeger
// listens (and counts what it had to drop before), so a first run whose
// Jaeger is still being built serves requests meanwhile. Jaeger still comes
// before the services, so the reverse order stops it after them and their
// last spans reach it.
func Native() []Component {
	catalogDeps := []string{PGCatalogPrimary, PGCatalogReplica, Memcached1, Memcached2}
	ordersDeps := []string{PGOrdersA, PGOrdersB, KafkaBroker, "catalog-1", "catalog-2"}
	return []Component{
		// The console depends on nothing: it starts first, answers while the
		// rest comes up (or Jaeger still builds), and shows each part down
		// until it is up.
		{Name: Console, Kind: Service, Binary: "console", Ports: []Port{{"http", "CONSOLE_PORT", 3000}}},
		{Name: PGCatalogPrimary, Kind: Postgres, Ports: []Port{{"pg", "PG_CATALOG_PRIMARY_PORT", 5433}}},
		{Name: PGCatalogReplica, Kind: Postgres, Ports: []Port{{"pg", "PG_CATALOG_REPLICA_PORT", 5434}}, DependsOn: []string{PGCatalogPrimary}},
		{Name: PGOrdersA, Kind: Postgres, Ports: []Port{{"pg", "PG_ORDERS_A_PORT", 5435}}},
		{Name: PGOrdersB, Kind: Postgres, Ports: []Port{{"pg", "PG_ORDERS_B_PORT", 5436}}},
		{Name: Memcached1, Kind: Memcached, Ports: []Port{{"memcache", "MEMCACHED_1_PORT", 11211}}},
		{Name: Memcached2, Kind: Memcached, Ports: []Port{{"memcache", "MEMCACHED_2_PORT", 11212}}},
		{Name: KafkaBroker, Kind: Kafka, Ports: []Port{
			{"broker", "KAFKA_PORT", 9092},
			{"controller", "KAFKA_CONTROLLER_PORT", 9093},
		}},
		{Name: JaegerAllInOne, Kind: Jaeger, Ports: []Port{
			{"otlp-grpc", "JAEGER_OTLP_GRPC_PORT", 4317},
			{"otlp-http", "JAEGER_OTLP_HTTP_PORT", 4318},
			{"query", "JAEGER_QUERY_PORT", 16686},
			{"query-grpc", "JAEGER_QUERY_GRPC_PORT", 16685},
			{"health", "JAEGER_HEALTH_PORT", 13133},
			{"metrics", "JAEGER_METRICS_PORT", 8888},
		}},
		{Name: "catalog-1", Kind: Service, Binary: "catalog", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "CATALOG_1_PORT", 8081}}, DependsOn: catalogDeps},
		{Name: "catalog-2", Kind: Service, Binary: "catalog", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "CATALOG_2_PORT", 8082}}, DependsOn: catalogDeps},
		{Name: "orders-1", Kind: Service, Binary: "orders", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "ORDERS_1_PORT", 8091}}, DependsOn: ordersDeps},
		{Name: "orders-2", Kind: Service, Binary: "orders", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "ORDERS_2_PORT", 8092}}, DependsOn: ordersDeps},
		{Name: "worker-1", Kind: Service, Binary: "worker", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "WORKER_1_PORT", 8191}}, DependsOn: ordersDeps},
		{Name: "worker-2", Kind: Service, Binary: "worker", CPUs: DefaultCloneCPUs, Ports: []Port{{"http", "WORKER_2_PORT", 8192}}, DependsOn: ordersDeps},
		{Name: Gateway, Kind: Service, Binary: "gateway", Ports: []Port{
			{"http", "GATEWAY_PORT", 8080},
			{"admin", "GATEWAY_ADMIN_PORT", 9080},
		}, DependsOn: []string{"catalog-1", "catalog-2", "orders-1", "orders-2"}},
		// Last, so it is stopped first: a target that goes away during
		// shutdown is not recorded as down. It depends on nothing: a target
		// that is not up yet is scraped as down until it is.
		{Name: PrometheusServer, Kind: Prometheus, Ports: []Port{{"http", "PROMETHEUS_PORT", 9090}}},
	}
}

// Stack is the topology with every port resolved for one profile.
type Stack struct {
	Profile    string
	Components []Component
	ports      map[string]int // "component/portname" -> port
}

// Resolve fixes every port: its environment variable when set, else its
// default plus offset (the test profile uses an offset so a test stack never
// touches a `make run` stack).
func Resolve(profile string, offset int, getenv func(string) string) (*Stack, error) {
	s := &Stack{Profile: profile, Components: Native(), ports: map[string]int{}}
	seen := map[int]string{}
	for _, c := range s.Components {
		for _, p := range c.Ports {
			port := p.Default + offset
			if v := getenv(p.Env); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n <= 0 || n > 65535 {
					return nil, fmt.Errorf("%s=%q is not a port number", p.Env, v)
				}
				port = n
			}
			if other, dup := seen[port]; dup {
				return nil, fmt.Errorf("port %d is given to both %s and %s (%s)", port, other, c.Name, p.Env)
			}
			seen[port] = c.Name + " " + p.Name
			s.ports[c.Name+"/"+p.Name] = port
		}
	}
	return s, nil
}

// Port returns the resolved port of component's named port; it panics on a
// name that is not in the topology, which is a programming error.
func (s *Stack) Port(component, name string) int {
	p, ok := s.ports[component+"/"+name]
	if !ok {
		panic(fmt.Sprintf("topology: no port %s/%s", component, name))
	}
	return p
}

// Addr is "127.0.0.1:<port>".
func (s *Stack) Addr(component, name string) string {
	return "127.0.0.1:" + strconv.Itoa(s.Port(component, name))
}

// Get returns the named component.
func (s *Stack) Get(name string) (Component, bool) {
	for _, c := range s.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// Clones returns the components that run binary ("catalog" -> catalog-1, catalog-2).
func (s *Stack) Clones(binary string) []Component {
	var out []Component
	for _, c := range s.Components {
		if c.Kind == Service && c.Binary == binary {
			out = append(out, c)
		}
	}
	return out
}

// ShardServer returns the Postgres component that holds a logical shard.
func ShardServer(shard int) string {
	if shard < ShardsPerServer {
		return PGOrdersA
	}
	return PGOrdersB
}

// ShardDatabase names a logical shard's database.
func ShardDatabase(shard int) string { return fmt.Sprintf("orders_shard_%d", shard) }

// Package returns the Go package (relative to the module root) that builds
// binary.
func Package(binary string) string {
	switch binary {
	case "gateway":
		return "./gateway/cmd/gateway"
	case "worker":
		return "./services/orders/cmd/worker"
	default:
		return "./services/" + binary + "/cmd/" + binary
	}
}

// Scrape says where Prometheus reads c's metrics: Job labels its series
// (the binary for a service, so a clone's series share a job), Port names
// the port that serves /metrics. ok is false for Postgres, memcached and
// Kafka: they have no exporter in this stack, and the services report what
// matters of them (catalog_db_up, catalog_cache_operations_total,
// orders_consumer_lag).
func Scrape(c Component) (job, port string, ok bool) {
	switch c.Kind {
	case Service:
		if c.Name == Gateway {
			return c.Binary, "admin", true // the public port answers /api/* alone
		}
		return c.Binary, "http", true
	case Jaeger:
		return "jaeger", "metrics", true
	case Prometheus:
		return "prometheus", "http", true
	}
	return "", "", false
}
