// Package concepts is the console's list of the system-design concepts the
// stack demonstrates: for each, what it is, the PromQL that shows it live,
// where its code is and the command that demonstrates it. docs/console.md
// explains the same queries.
package concepts

// Concept is one panel of the concepts page.
type Concept struct {
	ID       string
	Title    string
	What     string
	Series   []Series
	Code     []string // file paths in the repository
	Commands []string // the experiment or drill that demonstrates it, then other ways to see it
}

// Series is one live number and its time chart.
type Series struct {
	Label string
	Query string
	Unit  Unit
	// By names the label whose values split the series ("instance"); empty
	// for a single series.
	By string
}

// Unit says how a value is printed.
type Unit string

// The units of the panels' numbers.
const (
	PerSecond Unit = "/s"
	Seconds   Unit = "s"
	Ratio     Unit = "%"
	Bytes     Unit = "B"
	Count     Unit = ""
	Cores     Unit = "cores"
)

// All returns the thirteen concepts, one panel each, in the order the
// concept table of docs/architecture.md lists them.
func All() []Concept {
	return []Concept{
		{
			ID: "vertical-scaling", Title: "Vertical scaling",
			What: "Make one machine bigger: more cores, a larger connection pool, more concurrent work per process. " +
				"Here a clone's cores (its CPU quota and GOMAXPROCS) and its pool sizes are configuration, so the same binary grows without a code change. " +
				"It is the simplest step, and it ends at the size of one machine.",
			Series: []Series{
				{Label: "CPU used per clone", Query: `sum by (instance) (rate(process_cpu_seconds_total{job=~"catalog|orders|worker"}[10s]))`, Unit: Cores, By: "instance"},
				{Label: "GOMAXPROCS per clone", Query: `max by (instance) (go_sched_gomaxprocs_threads{job=~"catalog|orders|worker"})`, Unit: Count, By: "instance"},
			},
			Code:     []string{"infra/pgdb/pgdb.go", "infra/httpserver/capacity.go", "services/catalog/cmd/catalog/main.go"},
			Commands: []string{"go run ./loadtest experiment vertical"},
		},
		{
			ID: "horizontal-scaling", Title: "Horizontal scaling",
			What: "Add machines instead of growing one. The catalog and orders services keep no state of their own, so one more process adds capacity, until a shared part (the database, the machine) is the limit. " +
				"Scale out from the Break it page or with stackctl and watch the request rate spread.",
			Series: []Series{
				{Label: "requests per clone", Query: `instance:http_server_requests:rate10s{job=~"catalog|orders"}`, Unit: PerSecond, By: "instance"},
				{Label: "healthy catalog members", Query: `pool:gateway_member_healthy:sum{pool="catalog"}`, Unit: Count},
			},
			Code:     []string{"infra/topology/topology.go", "infra/local/stackctl/scale.go"},
			Commands: []string{"go run ./loadtest experiment clones", ".state/bin/stackctl scale-out catalog"},
		},
		{
			ID: "caching", Title: "Caching",
			What: "Keep the answer to a repeated question close, so most requests never reach the slow part. " +
				"The catalog puts products in memcached (cache-aside): a hit costs one memcached round trip, a miss a database query and a fill. " +
				"The hit ratio and the database query rate move in opposite directions.",
			Series: []Series{
				{Label: "cache hit ratio", Query: `job:catalog_cache_hit:ratio10s`, Unit: Ratio},
				{Label: "database queries", Query: `role:catalog_db_queries:rate10s`, Unit: PerSecond, By: "role"},
			},
			Code:     []string{"services/catalog/internal/catalogcache/cache.go"},
			Commands: []string{"go run ./loadtest experiment cache"},
		},
		{
			ID: "load-balancing", Title: "Load balancing",
			What: "Spread requests over identical clones and stop sending to the ones that fail. " +
				"The gateway picks the less loaded of two random members by a latency estimate (P2C over a peak EWMA), checks each member's /readyz, and ejects a member that keeps failing. " +
				"The orders service balances its calls to the catalog with the same code.",
			Series: []Series{
				{Label: "gateway share per member", Query: `member:gateway_upstream_tries:share10s`, Unit: Ratio, By: "member"},
				{Label: "retries", Query: `sum(pool_reason:gateway_retries:rate10s)`, Unit: PerSecond},
			},
			Code:     []string{"infra/balancer/policy.go", "infra/balancer/health.go", "infra/balancer/member.go", "gateway/internal/proxy/transport.go"},
			Commands: []string{"go run ./loadtest experiment kill-clone"},
		},
		{
			ID: "database-replication", Title: "Database replication",
			What: "Copy the database to a second server that replays the primary's write-ahead log, and send reads there. " +
				"Reads scale and survive the primary's loss, but the replica is behind by its lag: a read may be stale. " +
				"A writer still reads its own writes, through a consistency token checked against the replica's replay position.",
			Series: []Series{
				{Label: "replica lag", Query: `job:catalog_replica_lag_seconds:max`, Unit: Seconds},
				{Label: "replica lag (WAL)", Query: `job:catalog_replica_lag_bytes:max`, Unit: Bytes},
			},
			Code:     []string{"services/catalog/internal/catalogdb/readpath.go", "infra/local/stackctl/postgres.go"},
			Commands: []string{"go run ./loadtest experiment read-your-writes", ".state/bin/stackctl pause-replay pg-catalog-replica"},
		},
		{
			ID: "database-partitioning", Title: "Database partitioning",
			What: "Split data by a key so that each server holds part of it. " +
				"Orders are sharded by customer over 8 logical shards on two Postgres servers; an order id carries its shard, and Kafka messages are keyed by customer so one customer's orders stay in order. " +
				"A logical shard can move to another server without rehashing.",
			Series: []Series{
				{Label: "orders finished per shard", Query: `shard:orders_final:rate10s`, Unit: PerSecond, By: "shard"},
				{Label: "outbox backlog per shard", Query: `shard:orders_outbox_backlog:max`, Unit: Count, By: "shard"},
			},
			Code:     []string{"services/orders/internal/orders/shard.go", "services/orders/internal/shardmap"},
			Commands: []string{"go run ./loadtest run checkout"},
		},
		{
			ID: "clones", Title: "Clones",
			What: "Every clone of a service runs the same code with the same configuration and keeps no session of its own, so any clone can serve any request. " +
				"State lives in Postgres, memcached and Kafka. Killing a clone loses nothing that was committed: the gateway retries an idempotent request on another one.",
			Series: []Series{
				{Label: "share of its service's requests", Query: `instance:http_server_requests:share10s{job=~"catalog|orders"}`, Unit: Ratio, By: "instance"},
				{Label: "worker share of messages", Query: `instance:orders_worker_messages:share10s`, Unit: Ratio, By: "instance"},
			},
			Code:     []string{"services/catalog/cmd/catalog/main.go", "services/orders/cmd/orders/main.go", "services/orders/cmd/worker/main.go"},
			Commands: []string{"SCALESHOP_STACK=$PWD/.state/dev/stack.json go test ./services/orders/drills -run TestDrillWorkerKilledMidStream", ".state/bin/stackctl kill catalog-2"},
		},
		{
			ID: "rdbms-nosql", Title: "Databases: RDBMS and NoSQL",
			What: "A relational database gives transactions across rows and tables, constraints and joins; a NoSQL store gives a flexible shape and easy partitioning. " +
				"Here orders and stock are ACID transactions in Postgres, while a product's attributes are schemaless JSONB beside typed columns, so both sides are shown in one database.",
			Series: []Series{
				{Label: "orders finished", Query: `sum by (status) (shard_status:orders_final:rate10s)`, Unit: PerSecond, By: "status"},
				{Label: "catalog queries by role", Query: `role:catalog_db_queries:rate10s`, Unit: PerSecond, By: "role"},
			},
			Code:     []string{"services/orders/internal/ordersdb/store.go", "services/catalog/internal/catalogdb/reservations.go", "services/catalog/internal/catalogdb/migrations/00001_products.sql"},
			Commands: []string{"SCALESHOP_STACK=$PWD/.state/dev/stack.json go test ./services/catalog/drills -run TestConcurrentReservationsOfTheLastUnitOneWins"},
		},
		{
			ID: "caches-client-server", Title: "Caches: client side and server side",
			What: "A server-side cache (memcached) saves the database; a client-side cache saves the whole trip. " +
				"Product responses carry an ETag and Cache-Control, so a browser reuses its copy or asks with If-None-Match and gets a 304 without a body. " +
				"The Shop page shows, next to each response, whether the browser's cache, a 304 or the network served it.",
			Series: []Series{
				{Label: "304 Not Modified at the catalog", Query: `sum(rate(http_server_requests_total{job="catalog",code="304"}[10s]))`, Unit: PerSecond},
				{Label: "memcached hit ratio", Query: `job:catalog_cache_hit:ratio10s`, Unit: Ratio},
			},
			Code:     []string{"services/catalog/internal/httpapi/handlers.go", "services/catalog/internal/catalogcache/cache.go"},
			Commands: []string{"curl -i http://127.0.0.1:8080/api/products/1", "curl -i -H 'If-None-Match: <its ETag>' http://127.0.0.1:8080/api/products/1"},
		},
		{
			ID: "asynchronism", Title: "Asynchronism",
			What: "Answer at once and do the slow work later. An order is written with an outbox row in one transaction and answered with 202; a relay publishes it to Kafka and workers reserve stock and decide payment. " +
				"Queues absorb bursts; their lag is the price, and back pressure refuses new work when the backlog passes a bound.",
			Series: []Series{
				{Label: "consumer lag", Query: `job:orders_consumer_lag:sum`, Unit: Count},
				{Label: "accept to final, p99", Query: `max(job:orders_accept_to_final_seconds:p99_10s)`, Unit: Seconds},
			},
			Code:     []string{"services/orders/internal/ordersdb/store.go", "services/orders/internal/relay/relay.go", "services/orders/internal/worker/worker.go", "services/orders/internal/relay/backlog.go"},
			Commands: []string{"SCALESHOP_STACK=$PWD/.state/dev/stack.json go test ./services/orders/drills -run TestDrillKafkaDownFor30s", ".state/bin/stackctl stop kafka"},
		},
		{
			ID: "performance-scalability", Title: "Performance vs scalability",
			What: "Performance is how fast one request is served; scalability is whether the system stays that fast as load and machines grow. " +
				"A fast single request says nothing about the hundredth concurrent one: compare one clone's latency with what added clones do to throughput.",
			Series: []Series{
				{Label: "catalog p50 at the gateway", Query: `pool:gateway_request_duration_seconds:p50_10s{pool="catalog"}`, Unit: Seconds},
				{Label: "requests per clone", Query: `instance:http_server_requests:rate10s{job="catalog"}`, Unit: PerSecond, By: "instance"},
			},
			Code:     []string{"loadtest/internal/experiment/list.go", "loadtest/scenarios/mixed.yaml"},
			Commands: []string{"go run ./loadtest experiment clones"},
		},
		{
			ID: "latency-throughput", Title: "Latency vs throughput",
			What: "Latency is the time one request takes; throughput is how many finish per second. " +
				"Below capacity they are independent; near it, queues form and latency climbs steeply (the knee), so a system is run below its knee with headroom.",
			Series: []Series{
				{Label: "gateway requests", Query: `sum(rate(gateway_requests_total[10s]))`, Unit: PerSecond},
				{Label: "p99 at the gateway", Query: `max(pool:gateway_request_duration_seconds:p99_10s)`, Unit: Seconds},
			},
			Code:     []string{"loadtest/engine", "loadtest/internal/experiment/list.go"},
			Commands: []string{"go run ./loadtest experiment knee"},
		},
		{
			ID: "cap", Title: "Availability vs consistency (CAP)",
			What: "When part of the system is cut off, a service either answers with what it has (available, maybe stale) or refuses (consistent). " +
				"With the catalog primary down, reads keep working from the replica and the cache while writes fail fast with 503; a read that carries a consistency token chooses consistency instead.",
			Series: []Series{
				{Label: "primary up", Query: `role:catalog_db_up:min{role="primary"}`, Unit: Count},
				{Label: "catalog 5xx", Query: `sum(instance:http_server_errors:rate10s{job="catalog"})`, Unit: PerSecond},
			},
			Code:     []string{"services/catalog/internal/catalogdb/readpath.go"},
			Commands: []string{"go run ./loadtest experiment primary-down", ".state/bin/stackctl stop pg-catalog-primary"},
		},
	}
}

// ByID returns the concept with that id.
func ByID(id string) (Concept, bool) {
	for _, c := range All() {
		if c.ID == id {
			return c, true
		}
	}
	return Concept{}, false
}
