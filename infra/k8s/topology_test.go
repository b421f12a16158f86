package k8s

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// No cluster runs in CI, so these tests are what keeps infra/k8s a mirror
// of infra/topology, the way infra/topology/compose_test.go keeps
// docker-compose.yml one: a port, a clone count, a DSN, a topic or a probe
// that changes on one side only fails here.

// cloneCPU is one clone's CPU: the native cgroup quota of a catalog, orders
// API or worker process (0.5 core by default), as the pod's request and
// limit (base/clone-size.yaml).
const cloneCPU = "500m"

// catalogCluster is the CloudNativePG Cluster that holds the native
// catalog primary and its replica: one Cluster, two instances.
const catalogCluster = "pg-catalog"

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Env     []envVar `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe  *probe    `yaml:"readinessProbe"`
	LivenessProbe   *probe    `yaml:"livenessProbe"`
	Resources       resources `yaml:"resources"`
	SecurityContext *struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type workload struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				TopologySpreadConstraints []spreadConstraint `yaml:"topologySpreadConstraints"`
				InitContainers            []container        `yaml:"initContainers"`
				Containers                []container        `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// stack is one rendered overlay, indexed for the checks.
type stack struct {
	objs       []object
	configMaps map[string]map[string]string
}

func load(t *testing.T, dir string) *stack {
	t.Helper()
	s := &stack{objs: render(t, dir), configMaps: map[string]map[string]string{}}
	for _, o := range s.find("ConfigMap") {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		o.decode(t, &cm)
		s.configMaps[o.Metadata.Name] = cm.Data
	}
	return s
}

func (s *stack) find(kind string) []object {
	var out []object
	for _, o := range s.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (s *stack) get(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range s.find(kind) {
		if o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s/%s rendered", kind, name)
	return object{}
}

func (s *stack) workload(t *testing.T, kind, name string) workload {
	t.Helper()
	var w workload
	s.get(t, kind, name).decode(t, &w)
	return w
}

// env is what a container's process sees: its ConfigMaps, then its own
// variables, which win.
func (s *stack) env(t *testing.T, c container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		data, ok := s.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("container %s reads ConfigMap %s, which is not rendered", c.Name, from.ConfigMapRef.Name)
		}
		for k, v := range data {
			out[k] = v
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func (s *stack) clusters(t *testing.T) map[string]cnpgCluster {
	t.Helper()
	out := map[string]cnpgCluster{}
	for _, o := range s.find("Cluster") {
		var c cnpgCluster
		o.decode(t, &c)
		out[o.Metadata.Name] = c
	}
	return out
}

// goBinaries are the Go binaries of the native topology, each one
// Deployment.
func goBinaries() []string {
	var out []string
	for _, c := range topology.Native() {
		if c.Kind == topology.Service && !slices.Contains(out, c.Binary) {
			out = append(out, c.Binary)
		}
	}
	return out
}

func nativePort(t *testing.T, component, name string) int {
	t.Helper()
	c, ok := findComponent(component)
	if !ok {
		t.Fatalf("no component %s in topology.Native()", component)
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return p.Default
		}
	}
	t.Fatalf("%s has no %s port in topology.Native()", component, name)
	return 0
}

func findComponent(name string) (topology.Component, bool) {
	for _, c := range topology.Native() {
		if c.Name == name {
			return c, true
		}
	}
	return topology.Component{}, false
}

func firstClone(binary string) topology.Component {
	for _, c := range topology.Native() {
		if c.Kind == topology.Service && c.Binary == binary {
			return c
		}
	}
	return topology.Component{}
}

func clones(binary string) int {
	n := 0
	for _, c := range topology.Native() {
		if c.Kind == topology.Service && c.Binary == binary {
			n++
		}
	}
	return n
}

func countKind(kind topology.Kind) int {
	n := 0
	for _, c := range topology.Native() {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

func TestTheBaseHasTheNativeShape(t *testing.T) {
	s := load(t, "base")
	for _, binary := range goBinaries() {
		w := s.workload(t, "Deployment", binary)
		if w.Spec.Replicas == nil || *w.Spec.Replicas != clones(binary) {
			t.Errorf("base Deployment %s runs %s replicas, Native() has %d clones", binary, fmtInt(w.Spec.Replicas), clones(binary))
		}
	}
	mc := s.workload(t, "StatefulSet", "memcached")
	if n := countKind(topology.Memcached); mc.Spec.Replicas == nil || *mc.Spec.Replicas != n {
		t.Errorf("base memcached runs %s pods, Native() has %d nodes", fmtInt(mc.Spec.Replicas), n)
	}
}

func TestGoServicesMatchTheTopology(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			for _, binary := range goBinaries() {
				clone := firstClone(binary)
				port := nativePort(t, clone.Name, "http")
				w := s.workload(t, "Deployment", binary)
				pod := w.Spec.Template
				if pod.Metadata.Labels["app.kubernetes.io/name"] != binary || w.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != binary {
					t.Errorf("%s: pods and selector must carry app.kubernetes.io/name=%s", binary, binary)
				}
				main := pod.Spec.Containers[0]
				env := s.env(t, main)
				// Where Prometheus scrapes it: natively the gateway's
				// /metrics is on its loopback admin port; here on its
				// read-only observe port, which the pods can reach.
				metricsPort, wantPorts := port, []string{"http " + strconv.Itoa(port)}
				if binary == topology.Gateway {
					metricsPort = observePort(t, env)
					wantPorts = append(wantPorts, "observe "+strconv.Itoa(metricsPort))
				}
				if pod.Metadata.Annotations["prometheus.io/scrape"] != "true" || pod.Metadata.Annotations["prometheus.io/port"] != strconv.Itoa(metricsPort) ||
					pod.Metadata.Annotations["prometheus.io/path"] != "/metrics" {
					t.Errorf("%s: Prometheus annotations must point at :%d/metrics, got %v", binary, metricsPort, pod.Metadata.Annotations)
				}
				if !strings.HasPrefix(main.Image, "scaleshop/"+binary+":") {
					t.Errorf("%s runs image %q, want scaleshop/%s:<tag> (infra/docker/Dockerfile with BINARY=%s)", binary, main.Image, binary, binary)
				}
				var ports []string
				for _, p := range main.Ports {
					ports = append(ports, p.Name+" "+strconv.Itoa(p.ContainerPort))
				}
				if !slices.Equal(ports, wantPorts) {
					t.Errorf("%s exposes %v, want %v (%s of %s)", binary, ports, wantPorts, clone.Ports[0].Env, clone.Name)
				}
				listen := env["HTTP_ADDR"]
				if binary == topology.Gateway {
					listen = env["GATEWAY_ADDR"]
				}
				if listen != "0.0.0.0:"+strconv.Itoa(port) {
					t.Errorf("%s listens on %q, want 0.0.0.0:%d", binary, listen, port)
				}
				for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
					if binary == topology.Console {
						continue // it exports no spans: its cmd runs no telemetry.Setup
					}
					if got := s.env(t, c)["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://jaeger:"+strconv.Itoa(nativePort(t, topology.JaegerAllInOne, "otlp-grpc")) {
						t.Errorf("%s/%s exports spans to %q, want the jaeger Service's OTLP gRPC port", binary, c.Name, got)
					}
				}
				checkProbes(t, binary, main, port)
			}
		})
	}
}

// observePort is the gateway's read-only observe port, from its
// GATEWAY_OBSERVE_ADDR: it must listen on the pod's address (the console
// and Prometheus are other pods) and differ from the admin port.
func observePort(t *testing.T, gatewayEnv map[string]string) int {
	t.Helper()
	addr := gatewayEnv["GATEWAY_OBSERVE_ADDR"]
	host, port, err := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	if err != nil || host != "0.0.0.0" || n == 0 || n == nativePort(t, topology.Gateway, "admin") {
		t.Fatalf("GATEWAY_OBSERVE_ADDR = %q, want 0.0.0.0:<a port other than the admin port>", addr)
	}
	return n
}

func checkProbes(t *testing.T, binary string, c container, port int) {
	t.Helper()
	for _, p := range []struct {
		kind  string
		probe *probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s has no HTTP %s probe", binary, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s %s probe asks %s, want %s", binary, p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if got := p.probe.HTTPGet.Port; got != "http" && got != port {
			t.Errorf("%s %s probe port %v, want http (%d)", binary, p.kind, got, port)
		}
	}
}

func TestServicesMatchTheTopology(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			// Pools are built from DNS: catalog and orders are headless, so
			// their names resolve to every ready pod.
			for _, binary := range []string{"catalog", "orders"} {
				var svc service
				s.get(t, "Service", binary).decode(t, &svc)
				port := nativePort(t, firstClone(binary).Name, "http")
				if svc.Spec.ClusterIP != "None" {
					t.Errorf("Service %s must be headless (clusterIP: None): the balancers resolve it to pods", binary)
				}
				if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port {
					t.Errorf("Service %s ports %+v, want %d", binary, svc.Spec.Ports, port)
				}
			}
			wantPools := map[string]string{
				"CATALOG_URLS": "dns+http://catalog:" + strconv.Itoa(nativePort(t, "catalog-1", "http")),
				"ORDERS_URLS":  "dns+http://orders:" + strconv.Itoa(nativePort(t, "orders-1", "http")),
			}
			gw := s.env(t, s.workload(t, "Deployment", topology.Gateway).Spec.Template.Spec.Containers[0])
			for k, want := range wantPools {
				if gw[k] != want {
					t.Errorf("gateway %s = %q, want %q", k, gw[k], want)
				}
			}
			for _, binary := range []string{"orders", "worker"} {
				env := s.env(t, s.workload(t, "Deployment", binary).Spec.Template.Spec.Containers[0])
				if env["CATALOG_URLS"] != wantPools["CATALOG_URLS"] {
					t.Errorf("%s CATALOG_URLS = %q, want %q", binary, env["CATALOG_URLS"], wantPools["CATALOG_URLS"])
				}
			}

			var mc service
			s.get(t, "Service", "memcached").decode(t, &mc)
			mcPort := nativePort(t, topology.Memcached1, "memcache")
			if mc.Spec.ClusterIP != "None" || len(mc.Spec.Ports) != 1 || mc.Spec.Ports[0].Name != "memcache" || mc.Spec.Ports[0].Port != mcPort {
				t.Errorf("Service memcached must be headless with one port memcache %d: %+v", mcPort, mc.Spec)
			}
			catalogEnv := s.env(t, s.workload(t, "Deployment", "catalog").Spec.Template.Spec.Containers[0])
			if got := catalogEnv["MEMCACHED_SERVERS"]; got != "srv+_memcache._tcp.memcached" {
				t.Errorf("catalog MEMCACHED_SERVERS = %q, want the memcached Service's SRV record srv+_memcache._tcp.memcached", got)
			}

			var jaeger service
			s.get(t, "Service", "jaeger").decode(t, &jaeger)
			for _, name := range []string{"otlp-grpc", "otlp-http", "query"} {
				want := nativePort(t, topology.JaegerAllInOne, name)
				if !slices.ContainsFunc(jaeger.Spec.Ports, func(p struct {
					Name       string `yaml:"name"`
					Port       int    `yaml:"port"`
					TargetPort any    `yaml:"targetPort"`
				}) bool {
					return p.Name == name && p.Port == want
				}) {
					t.Errorf("Service jaeger lacks %s %d", name, want)
				}
			}
		})
	}
}

var dsnVar = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)

// TestDSNsNameTheOperatorsServices holds every database address to the
// Clusters: the catalog writes to <cluster>-rw and reads from <cluster>-ro,
// each logical shard goes to the -rw Service of the Cluster that
// infra/topology puts it on, and credentials come from that Cluster's -app
// Secret, never from a literal.
func TestDSNsNameTheOperatorsServices(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			clusters := s.clusters(t)
			if _, ok := clusters[catalogCluster]; !ok {
				t.Fatalf("no Cluster %s", catalogCluster)
			}
			for _, shard := range []string{topology.PGOrdersA, topology.PGOrdersB} {
				if _, ok := clusters[shard]; !ok {
					t.Fatalf("no Cluster %s for the native %s", shard, shard)
				}
			}
			if n := clusters[catalogCluster].Spec.Instances; n != 2 {
				t.Errorf("Cluster %s has %d instances; the read path's lag bound and consistency tokens are exact with one replica behind -ro (base/postgres.yaml)", catalogCluster, n)
			}
			checked := 0
			for _, binary := range goBinaries() {
				pod := s.workload(t, "Deployment", binary).Spec.Template.Spec
				for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
					checked += checkDSNs(t, s, clusters, binary+"/"+c.Name, c)
				}
			}
			// catalog (init + main: 1 + 2) + orders (init + main: 8 + 8) + worker 8.
			if want := 3 + 3*topology.LogicalShards; checked != want {
				t.Errorf("checked %d DSNs, want %d", checked, want)
			}
			for _, server := range []string{topology.PGOrdersA, topology.PGOrdersB} {
				checkShardDatabases(t, server, clusters[server])
			}
		})
	}
}

func checkDSNs(t *testing.T, s *stack, clusters map[string]cnpgCluster, where string, c container) int {
	t.Helper()
	secrets := map[string]string{} // env name -> "secret/key"
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	n := 0
	env := s.env(t, c)
	shardDSNs := 0
	for name, dsn := range env {
		if !strings.HasSuffix(name, "_DSN") {
			continue
		}
		n++
		refs := dsnVar.FindAllStringSubmatch(dsn, -1)
		u, err := url.Parse(dsnVar.ReplaceAllString(dsn, "x"))
		if err != nil || u.Scheme != "postgres" {
			t.Errorf("%s %s=%q is not a postgres URL", where, name, dsn)
			continue
		}
		host := u.Hostname()
		cluster, role, ok := strings.Cut(host, "-r")
		if !ok || (role != "w" && role != "o") {
			t.Errorf("%s %s host %q is not a <cluster>-rw or -ro Service", where, name, host)
			continue
		}
		if _, exists := clusters[cluster]; !exists {
			t.Errorf("%s %s host %q names Cluster %q, which is not rendered", where, name, host, cluster)
		}
		if u.Port() != "5432" || u.Query().Get("sslmode") != "require" {
			t.Errorf("%s %s must use port 5432 and sslmode=require (CloudNativePG serves TLS): %q", where, name, dsn)
		}
		// user and password are $(VAR)s of the cluster's -app Secret.
		if len(refs) != 2 || u.User == nil {
			t.Errorf("%s %s must take user and password from variables: %q", where, name, dsn)
		}
		for i, key := range []string{"username", "password"} {
			if i < len(refs) && secrets[refs[i][1]] != cluster+"-app/"+key {
				t.Errorf("%s %s takes its %s from %q, want Secret %s-app key %s", where, name, key, secrets[refs[i][1]], cluster, key)
			}
		}
		db := strings.TrimPrefix(u.Path, "/")
		switch {
		case name == "CATALOG_PRIMARY_DSN":
			if host != catalogCluster+"-rw" || db != "catalog" {
				t.Errorf("%s CATALOG_PRIMARY_DSN → %s/%s, want %s-rw/catalog (writes go to the primary)", where, host, db, catalogCluster)
			}
		case name == "CATALOG_REPLICA_DSN":
			if host != catalogCluster+"-ro" || db != "catalog" {
				t.Errorf("%s CATALOG_REPLICA_DSN → %s/%s, want %s-ro/catalog (reads go to the replica)", where, host, db, catalogCluster)
			}
		case strings.HasPrefix(name, "ORDERS_SHARD_"):
			shard, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "ORDERS_SHARD_"), "_DSN"))
			if err != nil || shard < 0 || shard >= topology.LogicalShards {
				t.Errorf("%s %s is not a logical shard of 0..%d", where, name, topology.LogicalShards-1)
				continue
			}
			shardDSNs++
			if want := topology.ShardServer(shard) + "-rw"; host != want || db != topology.ShardDatabase(shard) {
				t.Errorf("%s shard %d → %s/%s, want %s/%s (infra/topology ShardServer)", where, shard, host, db, want, topology.ShardDatabase(shard))
			}
		default:
			t.Errorf("%s has a DSN %s this test does not know", where, name)
		}
	}
	if shardDSNs != 0 && shardDSNs != topology.LogicalShards {
		t.Errorf("%s configures %d logical shards, want all %d", where, shardDSNs, topology.LogicalShards)
	}
	return n
}

// checkShardDatabases proves the server's Cluster creates exactly the
// databases of the shards infra/topology puts on it, at bootstrap.
func checkShardDatabases(t *testing.T, server string, c cnpgCluster) {
	t.Helper()
	created := []string{c.Spec.Bootstrap.Initdb.Database}
	createDB := regexp.MustCompile(`^CREATE DATABASE (\w+) OWNER (\w+)$`)
	for _, stmt := range c.Spec.Bootstrap.Initdb.PostInitSQL {
		m := createDB.FindStringSubmatch(stmt)
		if m == nil {
			t.Errorf("%s postInitSQL %q is not CREATE DATABASE <db> OWNER <owner>", server, stmt)
			continue
		}
		if m[2] != c.Spec.Bootstrap.Initdb.Owner {
			t.Errorf("%s creates %s owned by %s, want the app owner %s (the -app Secret's user)", server, m[1], m[2], c.Spec.Bootstrap.Initdb.Owner)
		}
		created = append(created, m[1])
	}
	var want []string
	for shard := range topology.LogicalShards {
		if topology.ShardServer(shard) == server {
			want = append(want, topology.ShardDatabase(shard))
		}
	}
	slices.Sort(created)
	if !slices.Equal(created, want) {
		t.Errorf("Cluster %s creates databases %v, want %v", server, created, want)
	}
}

// workerGroup reads the consumer group the workers join from their source
// (a main package cannot be imported).
func workerGroup(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../services/orders/cmd/worker/main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			if len(v.Names) == 1 && v.Names[0].Name == "ConsumerGroup" && len(v.Values) == 1 {
				if lit, ok := v.Values[0].(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					return s
				}
			}
		}
	}
	t.Fatal("services/orders/cmd/worker/main.go has no const ConsumerGroup")
	return ""
}

func TestKafkaMatchesTheTopology(t *testing.T) {
	group := workerGroup(t)
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			kafkas := s.find("Kafka")
			if len(kafkas) != 1 {
				t.Fatalf("want one Kafka, got %d", len(kafkas))
			}
			var k strimziKafka
			kafkas[0].decode(t, &k)
			name := k.Metadata.Name
			var plain *kafkaListener
			for i, l := range k.Spec.Kafka.Listeners {
				if l.TLS != nil && !*l.TLS {
					plain = &k.Spec.Kafka.Listeners[i]
				}
			}
			if plain == nil {
				t.Fatal("the Kafka has no plain listener for kafka-go")
			}
			bootstrap := name + "-kafka-bootstrap:" + strconv.Itoa(plain.Port)
			if plain.Port != nativePort(t, topology.KafkaBroker, "broker") {
				t.Errorf("plain listener on %d, natively %d", plain.Port, nativePort(t, topology.KafkaBroker, "broker"))
			}
			for _, binary := range []string{"orders", "worker"} {
				pod := s.workload(t, "Deployment", binary).Spec.Template
				if got := s.env(t, pod.Spec.Containers[0])["KAFKA_BROKERS"]; got != bootstrap {
					t.Errorf("%s KAFKA_BROKERS = %q, want %q (Strimzi's bootstrap Service of Kafka %s)", binary, got, bootstrap, name)
				}
				if pod.Metadata.Labels["scaleshop.io/kafka-client"] != "true" {
					t.Errorf("%s pods lack scaleshop.io/kafka-client=true, so the listener's NetworkPolicy shuts them out", binary)
				}
			}

			pools := s.find("KafkaNodePool")
			if len(pools) == 0 {
				t.Fatal("no KafkaNodePool")
			}
			brokers := 0
			for _, o := range pools {
				var p strimziNodePool
				o.decode(t, &p)
				if p.Metadata.Labels["strimzi.io/cluster"] != name {
					t.Errorf("KafkaNodePool %s belongs to %q, want %s", p.Metadata.Name, p.Metadata.Labels["strimzi.io/cluster"], name)
				}
				if slices.Contains(p.Spec.Roles, "broker") {
					brokers += p.Spec.Replicas
				}
			}
			wantBrokers := map[string]int{"overlays/dev": 1, "overlays/prod": 3}[dir]
			if brokers != wantBrokers {
				t.Errorf("%d Kafka brokers, want %d", brokers, wantBrokers)
			}

			topics := map[string]strimziTopic{}
			for _, o := range s.find("KafkaTopic") {
				var tp strimziTopic
				o.decode(t, &tp)
				topics[tp.Spec.TopicName] = tp
				if tp.Metadata.Labels["strimzi.io/cluster"] != name {
					t.Errorf("KafkaTopic %s belongs to %q, want %s", tp.Metadata.Name, tp.Metadata.Labels["strimzi.io/cluster"], name)
				}
				if tp.Spec.Replicas > brokers {
					t.Errorf("topic %s wants %d replicas on %d brokers", tp.Spec.TopicName, tp.Spec.Replicas, brokers)
				}
			}
			for _, topic := range topology.Topics() {
				tp, ok := topics[topic]
				if !ok {
					t.Errorf("no KafkaTopic for %s", topic)
					continue
				}
				if tp.Spec.Partitions != topology.TopicPartitions {
					t.Errorf("topic %s has %d partitions, infra/topology says %d", topic, tp.Spec.Partitions, topology.TopicPartitions)
				}
			}
			if len(topics) != len(topology.Topics()) {
				t.Errorf("KafkaTopics %v, infra/topology has %v", slices.Collect(mapsKeys(topics)), topology.Topics())
			}

			var so kedaScaledObject
			s.get(t, "ScaledObject", "worker").decode(t, &so)
			if so.Spec.ScaleTargetRef.Name != "worker" {
				t.Errorf("the ScaledObject scales %q, want the worker Deployment", so.Spec.ScaleTargetRef.Name)
			}
			if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount != topology.TopicPartitions {
				t.Errorf("the workers scale up to %s, want the partition count %d: a member beyond it gets no partition", fmtInt(so.Spec.MaxReplicaCount), topology.TopicPartitions)
			}
			for _, tr := range so.Spec.Triggers {
				m := tr.Metadata
				if m["bootstrapServers"] != bootstrap || m["consumerGroup"] != group || m["topic"] != topology.TopicOrdersPlaced {
					t.Errorf("the kafka trigger watches %s/%s/%s, want %s/%s/%s", m["bootstrapServers"], m["consumerGroup"], m["topic"], bootstrap, group, topology.TopicOrdersPlaced)
				}
			}
		})
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestClonesAreSizedLikeNativeClones(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			for _, binary := range []string{"catalog", "orders", "worker"} {
				c := s.workload(t, "Deployment", binary).Spec.Template.Spec.Containers[0]
				if c.Resources.Requests.CPU != cloneCPU || c.Resources.Limits.CPU != cloneCPU {
					t.Errorf("%s CPU request/limit %s/%s, want %s/%s: one native clone's quota", binary, c.Resources.Requests.CPU, c.Resources.Limits.CPU, cloneCPU, cloneCPU)
				}
				if got := s.env(t, c)["GOMAXPROCS"]; got != "1" {
					t.Errorf("%s GOMAXPROCS = %q, want 1 for half a core (Go never derives less than 2)", binary, got)
				}
			}
			for _, binary := range []string{"catalog", "orders"} {
				var hpa struct {
					Spec struct {
						ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
						Metrics        []struct {
							Resource struct {
								Name string `yaml:"name"`
							} `yaml:"resource"`
						} `yaml:"metrics"`
					} `yaml:"spec"`
				}
				s.get(t, "HorizontalPodAutoscaler", binary).decode(t, &hpa)
				if hpa.Spec.ScaleTargetRef.Name != binary || len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource.Name != "cpu" {
					t.Errorf("HPA %s must scale Deployment %s on CPU: %+v", binary, binary, hpa.Spec)
				}
			}
		})
	}
}

// TestPodsAreLockedDown: non-root, read-only root filesystem, no privilege
// escalation, spread across nodes, and a PodDisruptionBudget for each.
func TestPodsAreLockedDown(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			pdbs := map[string]bool{}
			for _, o := range s.find("PodDisruptionBudget") {
				var pdb struct {
					Spec struct {
						Selector selector `yaml:"selector"`
					} `yaml:"spec"`
				}
				o.decode(t, &pdb)
				pdbs[pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"]] = true
			}
			for _, o := range append(s.find("Deployment"), s.find("StatefulSet")...) {
				var w workload
				o.decode(t, &w)
				pod := w.Spec.Template.Spec
				if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
					t.Errorf("%s: pods must set runAsNonRoot", o.id())
				}
				for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
					sc := c.SecurityContext
					if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
						sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("%s/%s: want readOnlyRootFilesystem and no privilege escalation", o.id(), c.Name)
					}
				}
				if len(pod.TopologySpreadConstraints) == 0 {
					t.Errorf("%s has no topology spread constraint", o.id())
				}
				if name := w.Spec.Selector.MatchLabels["app.kubernetes.io/name"]; !pdbs[name] && o.Metadata.Name != "jaeger" {
					t.Errorf("%s has no PodDisruptionBudget", o.id())
				}
			}
		})
	}
}

type networkPolicy struct {
	Spec struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From  []map[string]any `yaml:"from"`
			Ports []struct {
				Port any `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

// TestOnlyTheGatewayTakesIngressAndNeverOnItsAdminPort: a default-deny
// policy covers every pod; the only rule open to any source selects the
// gateway, on its public port; and the admin port is in no Service,
// container port, Ingress or policy, because it listens on loopback.
func TestOnlyTheGatewayTakesIngressAndNeverOnItsAdminPort(t *testing.T) {
	public := nativePort(t, topology.Gateway, "http")
	admin := nativePort(t, topology.Gateway, "admin")
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			denyAll := false
			for _, o := range s.find("NetworkPolicy") {
				var np networkPolicy
				o.decode(t, &np)
				if len(np.Spec.PodSelector.MatchLabels) == 0 && slices.Contains(np.Spec.PolicyTypes, "Ingress") && len(np.Spec.Ingress) == 0 {
					denyAll = true
				}
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port == admin {
							t.Errorf("NetworkPolicy %s admits the admin port %d", o.Metadata.Name, admin)
						}
					}
					if len(rule.From) > 0 {
						continue
					}
					if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != topology.Gateway {
						t.Errorf("NetworkPolicy %s opens %v to any source; only the gateway takes ingress", o.Metadata.Name, np.Spec.PodSelector.MatchLabels)
					}
					if len(rule.Ports) != 1 || rule.Ports[0].Port != public {
						t.Errorf("NetworkPolicy %s opens the gateway on %v, want only %d", o.Metadata.Name, rule.Ports, public)
					}
				}
			}
			if !denyAll {
				t.Error("no default-deny ingress NetworkPolicy selects every pod")
			}

			for _, o := range s.find("Service") {
				var svc service
				o.decode(t, &svc)
				for _, p := range svc.Spec.Ports {
					if p.Port == admin || p.TargetPort == admin || p.Name == "admin" || p.TargetPort == "admin" {
						t.Errorf("Service %s carries the gateway's admin port", o.Metadata.Name)
					}
				}
			}
			gw := s.workload(t, "Deployment", topology.Gateway).Spec.Template.Spec.Containers[0]
			for _, p := range gw.Ports {
				if p.ContainerPort == admin {
					t.Errorf("the gateway container declares the admin port %d", admin)
				}
			}
			if addr := s.env(t, gw)["GATEWAY_ADMIN_ADDR"]; !httpserver.Loopback(addr) || !strings.HasSuffix(addr, ":"+strconv.Itoa(admin)) {
				t.Errorf("GATEWAY_ADMIN_ADDR = %q, want loopback port %d: only kubectl port-forward reaches it", addr, admin)
			}
			for _, o := range s.find("Ingress") {
				var ing struct {
					Spec struct {
						Rules []struct {
							HTTP struct {
								Paths []struct {
									Backend struct {
										Service struct {
											Name string `yaml:"name"`
											Port struct {
												Name   string `yaml:"name"`
												Number int    `yaml:"number"`
											} `yaml:"port"`
										} `yaml:"service"`
									} `yaml:"backend"`
								} `yaml:"paths"`
							} `yaml:"http"`
						} `yaml:"rules"`
					} `yaml:"spec"`
				}
				o.decode(t, &ing)
				for _, r := range ing.Spec.Rules {
					for _, p := range r.HTTP.Paths {
						if b := p.Backend.Service; b.Name != topology.Gateway || b.Port.Name != "http" {
							t.Errorf("Ingress %s routes to %s:%s%d; only the gateway's http port may be exposed", o.Metadata.Name, b.Name, b.Port.Name, b.Port.Number)
						}
					}
				}
			}
			var gwSvc service
			s.get(t, "Service", topology.Gateway).decode(t, &gwSvc)
			if len(gwSvc.Spec.Ports) != 1 || gwSvc.Spec.Ports[0].Name != "http" || gwSvc.Spec.Ports[0].TargetPort != "http" {
				t.Errorf("Service gateway must carry the public port alone: %+v", gwSvc.Spec.Ports)
			}
		})
	}
}

func fmtInt(p *int) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(*p)
}
