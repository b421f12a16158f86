package topology

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The compose Prometheus must record the same rules at the same pace as the
// native one, and scrape every component that the native one scrapes.

const (
	nativePrometheusConfig  = "infra/local/prometheus/prometheus.yml.tmpl"
	composePrometheusConfig = "infra/compose/prometheus.yml"
	prometheusRules         = "infra/local/prometheus/rules.yml"
)

type promConfig struct {
	Global        map[string]string `yaml:"global"`
	RuleFiles     []string          `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func loadPromConfig(t *testing.T, rel string) promConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(composeDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	var c promConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return c
}

func TestComposePrometheusMirrorsNative(t *testing.T) {
	native := loadPromConfig(t, nativePrometheusConfig)
	compose := loadPromConfig(t, composePrometheusConfig)
	if len(native.Global) == 0 || !reflect.DeepEqual(native.Global, compose.Global) {
		t.Errorf("global blocks differ: native %v, compose %v", native.Global, compose.Global)
	}

	// The compose service mounts the native rules file where its config
	// loads rules from.
	svc, ok := loadCompose(t).Services[PrometheusServer]
	if !ok {
		t.Fatal("docker-compose.yml has no prometheus service")
	}
	raw, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var mounts struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &mounts); err != nil {
		t.Fatal(err)
	}
	mounted := map[string]string{} // container path -> host path
	for _, v := range mounts.Services[PrometheusServer].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounted[parts[1]] = filepath.Clean(parts[0])
		}
	}
	if len(compose.RuleFiles) != 1 || mounted[compose.RuleFiles[0]] != prometheusRules {
		t.Errorf("compose prometheus loads rules %v; it must load %s, mounted (volumes %v)", compose.RuleFiles, prometheusRules, svc.Volumes)
	}

	// Every scraped native component has a job of the same name that
	// reaches its compose service on the component's default port.
	stack := resolveDefaultPorts(t)
	for _, c := range Native() {
		job, port, ok := Scrape(c)
		if !ok {
			continue
		}
		// Compose clones share their first native clone's port.
		first := c.Name
		if c.Kind == Service {
			first = stack.Clones(c.Binary)[0].Name
		}
		want := net.JoinHostPort(composeName(c), strconv.Itoa(stack.Port(first, port)))
		if c.Kind == Prometheus {
			want = net.JoinHostPort("127.0.0.1", strconv.Itoa(stack.Port(c.Name, port)))
		}
		if c.Name == Gateway {
			// Natively the gateway's metrics are on its loopback admin port;
			// in compose another container reads them on the observe port.
			observe, err := listenPort(loadCompose(t).Services[Gateway].Environment, "GATEWAY_OBSERVE_ADDR")
			if err != nil {
				t.Fatal(err)
			}
			want = net.JoinHostPort(Gateway, strconv.Itoa(observe))
		}
		var got []string
		for _, sc := range compose.ScrapeConfigs {
			if sc.JobName != job {
				continue
			}
			for _, st := range sc.StaticConfigs {
				got = append(got, st.Targets...)
			}
			for _, d := range sc.DNSSDConfigs {
				for _, n := range d.Names {
					got = append(got, net.JoinHostPort(n, strconv.Itoa(d.Port)))
				}
			}
		}
		if !slices.Contains(got, want) {
			t.Errorf("native Prometheus scrapes %s as job %q; compose job %q must reach %s, it has %v", c.Name, job, job, want, got)
		}
	}
}
