package topology

import (
	"encoding/json"
	"fmt"
	"os"
)

// Manifest is what a running stack publishes about itself (stack.json in its
// state directory): where every component listens, its pid and log. Tests
// and tools read it instead of guessing ports.
type Manifest struct {
	Profile  string `json:"profile"`
	StateDir string `json:"state_dir"`
	// Status is "starting", then "ready" once every component is up, and
	// "stopped". "serving" means every component but those in Pending is
	// up: Jaeger, on a first run, while its binary is still being built.
	// "degraded": a component of Pending could not start; the rest runs.
	Status  string   `json:"status"`
	Pending []string `json:"pending,omitempty"`
	// JaegerBuild is the JSON file with the progress of Jaeger's build
	// (state, percent; docs/running-locally.md).
	JaegerBuild string              `json:"jaeger_build"`
	Supervisor  int                 `json:"supervisor_pid"`
	Components  []ManifestComponent `json:"components"`
	Endpoints   Endpoints           `json:"endpoints"`
	CPUQuota    ManifestCPUQuota    `json:"cpu_quota"`
}

// ManifestCPUQuota says whether the stack's clones run under CPU quotas.
type ManifestCPUQuota struct {
	Enforced bool   `json:"enforced"`
	Cgroup   string `json:"cgroup,omitempty"` // the stack's cgroup, parent of each clone's
	Reason   string `json:"reason,omitempty"` // why not, when not enforced
}

// RequireCPUQuotas fails, with the supervisor's reason, when the clones run
// without CPU quotas: a measurement of capacity must not report numbers
// from clones that may use the whole machine.
func (m *Manifest) RequireCPUQuotas() error {
	if m.CPUQuota.Enforced {
		return nil
	}
	reason := m.CPUQuota.Reason
	if reason == "" {
		reason = "the stack's supervisor did not record any (started by an older stackctl?)"
	}
	return fmt.Errorf("this stack's clones run without CPU quotas, so a capacity measured on it means nothing: %s", reason)
}

// ManifestComponent is one running process.
type ManifestComponent struct {
	Name  string         `json:"name"`
	Kind  Kind           `json:"kind"`
	Ports map[string]int `json:"ports"`
	Log   string         `json:"log"`
	// CPUs is the CPU quota, in cores, the clone starts with (0: none).
	// A start with --cpus may differ; the process's own
	// process_cpu_quota_cores gauge says what holds now.
	CPUs float64 `json:"cpus,omitempty"`
}

// Endpoints are the addresses clients need, ready to use.
type Endpoints struct {
	ConsoleURL        string   `json:"console_url"`
	GatewayURL        string   `json:"gateway_url"`
	GatewayAdminURL   string   `json:"gateway_admin_url"`
	CatalogURLs       []string `json:"catalog_urls"`
	OrdersURLs        []string `json:"orders_urls"`
	WorkerURLs        []string `json:"worker_urls"`
	JaegerQueryURL    string   `json:"jaeger_query_url"`
	PrometheusURL     string   `json:"prometheus_url"`
	OTLPEndpoint      string   `json:"otlp_endpoint"`
	CatalogPrimaryDSN string   `json:"catalog_primary_dsn"`
	CatalogReplicaDSN string   `json:"catalog_replica_dsn"`
	// AdminDSNs connect as the postgres superuser, for tests and drills
	// (pausing replay, reading pg_stat_replication), keyed by component.
	AdminDSNs        map[string]string `json:"admin_dsns"`
	OrdersShardDSNs  []string          `json:"orders_shard_dsns"`
	MemcachedServers []string          `json:"memcached_servers"`
	KafkaBrokers     []string          `json:"kafka_brokers"`
}

// ReadManifest loads a stack.json.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// WriteManifest replaces path atomically, so a reader never sees half a file.
func WriteManifest(path string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
