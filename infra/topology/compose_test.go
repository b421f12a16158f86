package topology

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No Docker engine runs in CI, so docker-compose.yml is never started there.
// These tests are what keeps it a mirror of Native(): a port, a clone count,
// a dependency or a shard that changes on one side only fails here.

// composeDir holds docker-compose.yml; paths inside it are relative to it.
const composeDir = "../.."

// composeOneShot names the compose services that run to completion instead
// of staying up. They are not components of Native(), need no healthcheck,
// and are waited for with service_completed_successfully.
var composeOneShot = map[string]bool{"kafka-init": true}

// composeUserPorts are the ports of each infrastructure kind that a user or
// a tool on the host touches, so compose must publish them at their native
// default (on loopback, like the native stack binds them). container is the
// port inside the container when the image does not let it follow the default.
var composeUserPorts = map[Kind][]struct {
	name      string
	container int
}{
	Postgres:   {{"pg", 5432}},
	Memcached:  {{"memcache", 11211}},
	Kafka:      {{"broker", 0}},
	Jaeger:     {{"otlp-grpc", 0}, {"otlp-http", 0}, {"query", 0}},
	Prometheus: {{"http", 0}},
}

// composeGatewayPorts says on which host address each gateway port is
// published.
var composeGatewayPorts = []struct {
	name   string
	env    string // its listen-address variable; the main one is checked with the other binaries'
	hostIP string // "" is every interface, notPublished none
}{
	{"http", "", ""},
	// The admin API changes pools and listens on the container's loopback
	// only (the gateway refuses anything else): the console and Prometheus
	// read the read-only observe port instead.
	{"admin", "GATEWAY_ADMIN_ADDR", notPublished},
}

const notPublished = "-"

func TestComposeServicesAreTheNativeComponents(t *testing.T) {
	cf := loadCompose(t)
	want := map[string]bool{}
	for _, c := range Native() {
		want[composeName(c)] = true
	}
	for name := range cf.Services {
		if !want[name] && !composeOneShot[name] {
			t.Errorf("compose service %q is not a component of topology.Native() nor a known one-shot job; add it to Native() or to composeOneShot", name)
		}
	}
	for name := range want {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("topology.Native() has %q but docker-compose.yml has no service of that name", name)
		}
	}
	for name := range composeOneShot {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("one-shot service %q is missing from docker-compose.yml", name)
		}
	}
}

func TestComposePublishesInfrastructurePorts(t *testing.T) {
	cf := loadCompose(t)
	for _, c := range Native() {
		if c.Kind == Service {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			svc, ok := cf.Services[c.Name]
			if !ok {
				t.Fatalf("no compose service %q", c.Name)
			}
			rules, ok := composeUserPorts[c.Kind]
			if !ok {
				t.Fatalf("kind %q has no entry in composeUserPorts: say which of its ports compose must publish", c.Kind)
			}
			for _, rule := range rules {
				p, ok := componentPort(c, rule.name)
				if !ok {
					t.Errorf("composeUserPorts names port %q, which %s does not have in Native()", rule.name, c.Name)
					continue
				}
				container := rule.container
				if container == 0 {
					container = p.Default
				}
				want := composePort{HostIP: "127.0.0.1", Host: p.Default, Container: container}
				if !slices.Contains(svc.Ports, want) {
					t.Errorf("%s must publish %q as %s (%s default %d); it publishes %v",
						c.Name, p.Name, want, p.Env, p.Default, svc.Ports)
				}
			}
		})
	}
}

func TestComposeGoServicesMatchNativeClones(t *testing.T) {
	cf := loadCompose(t)
	stack := resolveDefaultPorts(t)
	for _, binary := range nativeBinaries() {
		t.Run(binary, func(t *testing.T) {
			svc, ok := cf.Services[binary]
			if !ok {
				t.Fatalf("no compose service %q for the %s binary", binary, binary)
			}
			clones := stack.Clones(binary)
			replicas, err := svc.replicas()
			if err != nil {
				t.Fatal(err)
			}
			if replicas != len(clones) {
				t.Errorf("%s runs %d replicas, Native() has %d clones", binary, replicas, len(clones))
			}

			if svc.Build == nil {
				t.Fatalf("%s has no build section", binary)
			}
			if got := svc.Build.Args["BINARY"]; got != binary {
				t.Errorf("%s builds BINARY=%q, want %q", binary, got, binary)
			}

			httpPort, ok := componentPort(clones[0], "http")
			if !ok {
				t.Fatalf("%s has no http port in Native()", clones[0].Name)
			}
			listen := listenVar(binary)
			got, err := listenPort(svc.Environment, listen)
			if err != nil {
				t.Fatalf("%s: %v", binary, err)
			}
			if got != httpPort.Default {
				t.Errorf("%s %s port = %d, want %d (%s default of %s)", binary, listen, got, httpPort.Default, httpPort.Env, clones[0].Name)
			}
			probe := fmt.Sprintf(":%d/readyz", httpPort.Default)
			if svc.Healthcheck == nil || !strings.Contains(svc.Healthcheck.Test.joined(), probe) {
				t.Errorf("%s healthcheck must GET %s on its own %s port; it is %v", binary, probe, listen, svc.Healthcheck)
			}

			// Replicas share one environment and would all claim the same
			// host port and instance id: a scaled service publishes nothing
			// (the gateway reaches it) and leaves SERVICE_INSTANCE_ID to the
			// image's entrypoint, which derives it from the hostname.
			if replicas > 1 && len(svc.Ports) > 0 {
				t.Errorf("%s has %d replicas and publishes %v; clones must not publish host ports", binary, replicas, svc.Ports)
			}
			if id, ok := svc.Environment["SERVICE_INSTANCE_ID"]; ok && replicas > 1 {
				t.Errorf("%s sets SERVICE_INSTANCE_ID=%q, which every one of its %d replicas would share", binary, id, replicas)
			}

			// Each clone is the same small machine in both stacks.
			var wantCPUs float64
			if CPUsEnv(binary) != "" {
				wantCPUs = clones[0].CPUs
			}
			switch {
			case svc.CPUs == nil && wantCPUs > 0:
				t.Errorf("%s has no cpus:, want %v (the CPU quota of %s in Native())", binary, wantCPUs, clones[0].Name)
			case svc.CPUs != nil && *svc.CPUs != wantCPUs:
				t.Errorf("%s has cpus: %v, want %v (the CPU quota of %s in Native(); 0 means none)", binary, *svc.CPUs, wantCPUs, clones[0].Name)
			}
		})
	}
}

func TestComposeGatewayPublishing(t *testing.T) {
	cf := loadCompose(t)
	gw, ok := resolveDefaultPorts(t).Get(Gateway)
	if !ok {
		t.Fatal("Native() has no gateway")
	}
	svc, ok := cf.Services[Gateway]
	if !ok {
		t.Fatal("docker-compose.yml has no gateway service")
	}
	for _, tc := range composeGatewayPorts {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := componentPort(gw, tc.name)
			if !ok {
				t.Fatalf("gateway has no %q port in Native()", tc.name)
			}
			want := composePort{HostIP: tc.hostIP, Host: p.Default, Container: p.Default}
			if tc.hostIP != notPublished && !slices.Contains(svc.Ports, want) {
				t.Errorf("gateway must publish %s (%s default %d); it publishes %v", want, p.Env, p.Default, svc.Ports)
			}
			for _, got := range svc.Ports {
				switch {
				case got.Container != p.Default:
				case tc.hostIP == notPublished:
					t.Errorf("gateway %s port is published as %s; it must not be", tc.name, got)
				case got.HostIP != tc.hostIP:
					t.Errorf("gateway %s port is also published as %s; only %s is allowed", tc.name, got, want)
				}
			}
			if tc.env == "" {
				return
			}
			listen, err := listenPort(svc.Environment, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if listen != p.Default {
				t.Errorf("gateway %s port = %d, want %d (%s default)", tc.env, listen, p.Default, p.Env)
			}
		})
	}
}

func TestComposeHasNoContainerNames(t *testing.T) {
	for name, svc := range loadCompose(t).Services {
		if svc.ContainerName != "" {
			t.Errorf("%s sets container_name %q; a fixed name breaks `docker compose up --scale %s=N`", name, svc.ContainerName, name)
		}
	}
}

func TestComposeLongRunningServicesHaveHealthchecks(t *testing.T) {
	for name, svc := range loadCompose(t).Services {
		if composeOneShot[name] {
			continue
		}
		hc := svc.Healthcheck
		switch {
		case hc == nil:
			t.Errorf("%s has no healthcheck; depends_on service_healthy would never wait for it", name)
		case hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE":
			t.Errorf("%s disables its healthcheck", name)
		}
	}
}

func TestComposeDependsOnMirrorsNative(t *testing.T) {
	cf := loadCompose(t)
	stack := resolveDefaultPorts(t)
	for name, svc := range cf.Services {
		for target, condition := range svc.DependsOn {
			dep, ok := cf.Services[target]
			if !ok {
				t.Errorf("%s depends on %q, which is not a compose service", name, target)
				continue
			}
			want := "service_healthy"
			if composeOneShot[target] {
				want = "service_completed_successfully"
			}
			if condition != want {
				t.Errorf("%s depends on %s with condition %q, want %q", name, target, condition, want)
			}
			if want == "service_healthy" && dep.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, target, target)
			}
		}
	}
	for _, c := range Native() {
		from := composeName(c)
		svc, ok := cf.Services[from]
		if !ok {
			continue // reported by TestComposeServicesAreTheNativeComponents
		}
		for _, d := range c.DependsOn {
			dep, ok := stack.Get(d)
			if !ok {
				t.Errorf("Native(): %s depends on %s, which is not a component", c.Name, d)
				continue
			}
			to := composeName(dep)
			if to == from {
				continue
			}
			if _, ok := svc.DependsOn[to]; !ok {
				t.Errorf("Native(): %s depends on %s, but compose service %s does not depend on %s", c.Name, d, from, to)
			}
		}
	}
}

// TestComposeEnvironmentPointsAtDependencies catches a renamed service that a
// DSN or URL still names, and a connection made before its target is up.
func TestComposeEnvironmentPointsAtDependencies(t *testing.T) {
	cf := loadCompose(t)
	for name, svc := range cf.Services {
		for key, value := range svc.Environment {
			if !isAddressVar(key) {
				continue
			}
			for _, item := range strings.Split(value, ",") {
				host, err := addressHost(strings.TrimSpace(item))
				if err != nil {
					t.Errorf("%s %s: %v", name, key, err)
					continue
				}
				if _, ok := cf.Services[host]; !ok {
					t.Errorf("%s %s=%q names host %q, which is not a compose service", name, key, value, host)
					continue
				}
				if _, ok := svc.DependsOn[host]; !ok {
					t.Errorf("%s %s names %s but %s does not depend on %s", name, key, host, name, host)
				}
			}
		}
	}
}

func TestComposeOrdersShardPlacement(t *testing.T) {
	cf := loadCompose(t)
	for _, binary := range []string{"orders", "worker"} {
		svc, ok := cf.Services[binary]
		if !ok {
			t.Errorf("no compose service %q", binary)
			continue
		}
		for shard := range LogicalShards + 1 {
			key := fmt.Sprintf("ORDERS_SHARD_%d_DSN", shard)
			dsn, ok := svc.Environment[key]
			if shard == LogicalShards {
				if ok {
					t.Errorf("%s sets %s but there are only %d logical shards", binary, key, LogicalShards)
				}
				continue
			}
			if !ok {
				t.Errorf("%s does not set %s", binary, key)
				continue
			}
			u, err := url.Parse(dsn)
			if err != nil {
				t.Errorf("%s %s: %v", binary, key, err)
				continue
			}
			if u.Hostname() != ShardServer(shard) || strings.TrimPrefix(u.Path, "/") != ShardDatabase(shard) {
				t.Errorf("%s %s points at %s%s, want %s/%s", binary, key, u.Host, u.Path, ShardServer(shard), ShardDatabase(shard))
			}
		}
	}
	// Each orders server must create the databases that the DSNs above name.
	for shard := range LogicalShards {
		server := ShardServer(shard)
		created := strings.Fields(cf.Services[server].Environment["ORDERS_SHARDS"])
		if !slices.Contains(created, strconv.Itoa(shard)) {
			t.Errorf("%s creates shards %v (ORDERS_SHARDS), missing %d", server, created, shard)
		}
	}
}

func TestComposeKafkaInitCreatesTopics(t *testing.T) {
	svc, ok := loadCompose(t).Services["kafka-init"]
	if !ok {
		t.Fatal("docker-compose.yml has no kafka-init service")
	}
	script := svc.Command.joined()
	for _, topic := range Topics() {
		var line string
		for l := range strings.SplitSeq(script, "\n") {
			if strings.Contains(l+" ", "--topic "+topic+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("kafka-init does not create topic %s", topic)
			continue
		}
		for _, flag := range []string{"--create", "--if-not-exists", fmt.Sprintf("--partitions %d ", TopicPartitions)} {
			if !strings.Contains(line+" ", flag) {
				t.Errorf("kafka-init creates %s without %q: %s", topic, strings.TrimSpace(flag), line)
			}
		}
	}
}

func TestComposeReferencedFilesExist(t *testing.T) {
	for name, svc := range loadCompose(t).Services {
		if b := svc.Build; b != nil {
			dockerfile := b.Dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			path := filepath.Join(composeDir, b.Context, dockerfile)
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s builds from %s: %v", name, dockerfile, err)
			}
		}
		for _, v := range svc.Volumes {
			if !v.bindMount() {
				continue
			}
			if filepath.IsAbs(v.Source) {
				t.Errorf("%s mounts %s: an absolute host path exists only on one machine", name, v.Source)
				continue
			}
			if _, err := os.Stat(filepath.Join(composeDir, v.Source)); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// --- helpers ---

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(cf.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return cf
}

func resolveDefaultPorts(t *testing.T) *Stack {
	t.Helper()
	s, err := Resolve("compose", 0, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// composeName is the compose service that runs a component: every clone of
// a Go binary shares one service, scaled by replicas.
func composeName(c Component) string {
	if c.Kind == Service {
		return c.Binary
	}
	return c.Name
}

// nativeBinaries lists the Go binaries of Native() in its order.
func nativeBinaries() []string {
	var out []string
	for _, c := range Native() {
		if c.Kind == Service && !slices.Contains(out, c.Binary) {
			out = append(out, c.Binary)
		}
	}
	return out
}

func componentPort(c Component, name string) (Port, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return Port{}, false
}

// listenVar is the variable that sets a binary's main listen address; the
// native supervisor sets GATEWAY_ADDR instead of HTTP_ADDR for the gateway.
func listenVar(binary string) string {
	if binary == Gateway {
		return "GATEWAY_ADDR"
	}
	return "HTTP_ADDR"
}

// listenPort reads the port of a host:port listen address variable.
func listenPort(env map[string]string, key string) (int, error) {
	addr, ok := env[key]
	if !ok {
		return 0, fmt.Errorf("%s is not set", key)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", key, addr, err)
	}
	return strconv.Atoi(port)
}

// isAddressVar says whether a variable holds addresses of other services.
func isAddressVar(key string) bool {
	for _, suffix := range []string{"_DSN", "_URLS", "_SERVERS", "_BROKERS", "_ENDPOINT"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// addressHost takes a URL (postgres://u:p@host:5432/db, http://host:8081) or a
// host:port.
func addressHost(addr string) (string, error) {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", err
		}
		return u.Hostname(), nil
	}
	host, _, err := net.SplitHostPort(addr)
	return host, err
}

// --- the part of the compose file format that these tests read ---
// Each type accepts both the short and the long syntax compose allows for it,
// so rewriting the file in an equivalent form does not break the tests.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	ContainerName string              `yaml:"container_name"`
	Build         *composeBuild       `yaml:"build"`
	Command       composeList         `yaml:"command"`
	Environment   composeMap          `yaml:"environment"`
	Ports         []composePort       `yaml:"ports"`
	Volumes       []composeVolume     `yaml:"volumes"`
	Healthcheck   *composeHealthcheck `yaml:"healthcheck"`
	DependsOn     composeDependsOn    `yaml:"depends_on"`
	Scale         *int                `yaml:"scale"`
	CPUs          *float64            `yaml:"cpus"`
	Deploy        struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

// replicas is what `docker compose up` starts without --scale.
func (s composeService) replicas() (int, error) {
	n := 1
	if s.Deploy.Replicas != nil {
		n = *s.Deploy.Replicas
	}
	if s.Scale != nil {
		if s.Deploy.Replicas != nil && *s.Scale != n {
			return 0, fmt.Errorf("scale (%d) and deploy.replicas (%d) disagree", *s.Scale, n)
		}
		n = *s.Scale
	}
	return n, nil
}

type composeHealthcheck struct {
	Test    composeList `yaml:"test"`
	Disable bool        `yaml:"disable"`
}

func (h *composeHealthcheck) String() string {
	if h == nil {
		return "none"
	}
	return h.Test.joined()
}

// composeBuild is `build: ./dir` or `build: {context, dockerfile, args}`.
type composeBuild struct {
	Context    string
	Dockerfile string
	Args       composeMap
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var long struct {
		Context    string     `yaml:"context"`
		Dockerfile string     `yaml:"dockerfile"`
		Args       composeMap `yaml:"args"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	*b = composeBuild(long)
	return nil
}

// composeList is a command or healthcheck test: a list, or one string.
type composeList []string

func (l *composeList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = composeList{n.Value}
		return nil
	}
	var items []string
	if err := n.Decode(&items); err != nil {
		return err
	}
	*l = items
	return nil
}

func (l composeList) joined() string { return strings.Join(l, " ") }

// composeMap is environment or build args: a mapping, or a list of KEY=VALUE.
type composeMap map[string]string

func (m *composeMap) UnmarshalYAML(n *yaml.Node) error {
	out := composeMap{}
	switch n.Kind {
	case yaml.MappingNode:
		var raw map[string]*string // KEY: with no value passes the host's through
		if err := n.Decode(&raw); err != nil {
			return err
		}
		for k, v := range raw {
			if v != nil {
				out[k] = *v
			} else {
				out[k] = ""
			}
		}
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		for _, item := range items {
			k, v, _ := strings.Cut(item, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: want a mapping or a list of KEY=VALUE", n.Line)
	}
	*m = out
	return nil
}

// composeDependsOn maps each dependency to its condition ("" in the list form).
type composeDependsOn map[string]string

func (d *composeDependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := composeDependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			out[name] = ""
		}
	case yaml.MappingNode:
		var long map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		for name, dep := range long {
			out[name] = dep.Condition
		}
	default:
		return fmt.Errorf("line %d: depends_on wants a list or a mapping", n.Line)
	}
	*d = out
	return nil
}

// composePort is one entry of ports; Host is 0 when the entry only
// exposes a container port on an ephemeral host port.
type composePort struct {
	HostIP    string
	Host      int
	Container int
}

func (p composePort) String() string {
	if p.HostIP == "" {
		return fmt.Sprintf("%d:%d", p.Host, p.Container)
	}
	return fmt.Sprintf("%s:%d:%d", p.HostIP, p.Host, p.Container)
}

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Target    int    `yaml:"target"`
			Published string `yaml:"published"`
			HostIP    string `yaml:"host_ip"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		p.Container, p.HostIP = long.Target, long.HostIP
		if long.Published != "" {
			host, err := strconv.Atoi(long.Published)
			if err != nil {
				return fmt.Errorf("line %d: published %q: %w", n.Line, long.Published, err)
			}
			p.Host = host
		}
		return nil
	}
	// Short syntax: [HOST_IP:][HOST:]CONTAINER[/PROTOCOL], HOST_IP maybe [v6].
	spec, _, _ := strings.Cut(n.Value, "/")
	rest, container := "", spec
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		rest, container = spec[:i], spec[i+1:]
	}
	var err error
	if p.Container, err = strconv.Atoi(container); err != nil {
		return fmt.Errorf("line %d: port %q: %w", n.Line, n.Value, err)
	}
	if rest == "" {
		return nil
	}
	host := rest
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		p.HostIP, host = strings.Trim(rest[:i], "[]"), rest[i+1:]
	}
	if p.Host, err = strconv.Atoi(host); err != nil {
		return fmt.Errorf("line %d: port %q: %w", n.Line, n.Value, err)
	}
	return nil
}

// composeVolume is one entry of volumes, short (SRC:DST[:MODE]) or long.
type composeVolume struct {
	Type   string
	Source string
}

// bindMount says whether the source is a path on the host rather than a
// named volume.
func (v composeVolume) bindMount() bool {
	return v.Type == "bind" || strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "/")
}

func (v *composeVolume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Type   string `yaml:"type"`
			Source string `yaml:"source"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		*v = composeVolume(long)
		return nil
	}
	if src, _, ok := strings.Cut(n.Value, ":"); ok {
		v.Source = src
	}
	return nil
}

// The console and Prometheus read the gateway's observe port, which must
// be the one the gateway serves, and reach the host's loopback only.
func TestComposeReadersUseTheGatewaysObservePort(t *testing.T) {
	cf := loadCompose(t)
	gw := cf.Services[Gateway]
	port, err := listenPort(gw.Environment, "GATEWAY_OBSERVE_ADDR")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("http://%s:%d", Gateway, port); cf.Services[Console].Environment["GATEWAY_ADMIN_URL"] != want {
		t.Errorf("console GATEWAY_ADMIN_URL = %q, want the observe port %s", cf.Services[Console].Environment["GATEWAY_ADMIN_URL"], want)
	}
	for _, got := range gw.Ports {
		if got.Container == port && got.HostIP != "127.0.0.1" {
			t.Errorf("the observe port is published as %s; loopback only", got)
		}
	}
	raw, err := os.ReadFile("../compose/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if target := fmt.Sprintf("%q", fmt.Sprintf("%s:%d", Gateway, port)); !strings.Contains(string(raw), target) {
		t.Errorf("infra/compose/prometheus.yml does not scrape the gateway at %s", target)
	}
}
