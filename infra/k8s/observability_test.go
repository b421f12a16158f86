package k8s

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// The console and the Prometheus it reads, held to infra/topology and to
// the native stack's files: the console's addresses are the Services of
// what it calls, Prometheus labels every scraped pod with the job the
// native stack uses, and its rules are the native rules.yml itself.

// nativeRules is the one rules file: stackctl and docker-compose.yml read
// it there, and infra/local/prometheus/kustomization.yaml makes it the
// ConfigMap prometheus-rules.
const nativeRules = "../local/prometheus/rules.yml"

// serviceURL checks that raw is http://<Service>:<port> for a rendered
// Service whose port targets the named container port of the pods of app,
// and returns the Service's name.
func serviceURL(t *testing.T, s *stack, what, raw, app, containerPort string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		t.Errorf("console %s = %q, want http://<service>:<port>", what, raw)
		return ""
	}
	var svc service
	found := false
	for _, o := range s.find("Service") {
		if o.Metadata.Name == u.Hostname() {
			o.decode(t, &svc)
			found = true
		}
	}
	if !found {
		t.Errorf("console %s = %q names no rendered Service", what, raw)
		return ""
	}
	if svc.Spec.Selector["app.kubernetes.io/name"] != app {
		t.Errorf("console %s: Service %s selects %v, want the %s pods", what, u.Hostname(), svc.Spec.Selector, app)
	}
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(p.Port) == u.Port() {
			if p.TargetPort != containerPort {
				t.Errorf("console %s: Service %s port %d targets %v, want the %s pods' %s port", what, u.Hostname(), p.Port, p.TargetPort, app, containerPort)
			}
			return u.Hostname()
		}
	}
	t.Errorf("console %s: Service %s has no port %s", what, u.Hostname(), u.Port())
	return ""
}

func TestTheConsoleReadsTheStackThroughItsServices(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			pod := s.workload(t, "Deployment", topology.Console).Spec.Template.Spec
			env := s.env(t, pod.Containers[0])

			var svc service
			s.get(t, "Service", topology.Console).decode(t, &svc)
			port := nativePort(t, topology.Console, "http")
			if svc.Spec.ClusterIP == "None" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].TargetPort != "http" {
				t.Errorf("Service console must be a ClusterIP Service of port %d → http (kubectl port-forward svc/console %d): %+v", port, port, svc.Spec)
			}

			serviceURL(t, s, "GATEWAY_URL", env["GATEWAY_URL"], topology.Gateway, "http")
			observe := serviceURL(t, s, "GATEWAY_ADMIN_URL", env["GATEWAY_ADMIN_URL"], topology.Gateway, "observe")
			if observe == topology.Gateway {
				t.Errorf("GATEWAY_ADMIN_URL goes through Service gateway, the one the Ingress exposes")
			}
			for _, o := range s.find("Ingress") {
				if strings.Contains(string(o.raw), "name: "+observe+"\n") || strings.Contains(string(o.raw), "name: "+topology.Console+"\n") {
					t.Errorf("Ingress %s names %s or the console; neither takes traffic from outside", o.Metadata.Name, observe)
				}
			}
			serviceURL(t, s, "PROMETHEUS_URL", env["PROMETHEUS_URL"], "prometheus", "http")
			if u, _ := url.Parse(env["PROMETHEUS_URL"]); u != nil && u.Port() != strconv.Itoa(nativePort(t, topology.PrometheusServer, "http")) {
				t.Errorf("PROMETHEUS_URL = %q, want the native port %d", env["PROMETHEUS_URL"], nativePort(t, topology.PrometheusServer, "http"))
			}
			serviceURL(t, s, "JAEGER_QUERY_URL", env["JAEGER_QUERY_URL"], "jaeger", "query")
			if u, _ := url.Parse(env["JAEGER_QUERY_URL"]); u != nil && u.Port() != strconv.Itoa(nativePort(t, topology.JaegerAllInOne, "query")) {
				t.Errorf("JAEGER_QUERY_URL = %q, want the native query port %d", env["JAEGER_QUERY_URL"], nativePort(t, topology.JaegerAllInOne, "query"))
			}

			// No supervisor on a cluster: Break it off, and the overview
			// from Prometheus's targets instead of a stack manifest.
			if v, ok := env["STACK_STATE_DIR"]; ok {
				t.Errorf("STACK_STATE_DIR = %q: a cluster has no native supervisor, so Break it must be off (unset)", v)
			}
			if env["OVERVIEW_SOURCE"] != "prometheus" {
				t.Errorf("OVERVIEW_SOURCE = %q, want prometheus: a cluster has no stack manifest", env["OVERVIEW_SOURCE"])
			}
		})
	}
}

// relabelRule is one of Prometheus's relabel_configs, for the actions the
// base uses.
type relabelRule struct {
	SourceLabels []string `yaml:"source_labels"`
	Separator    *string  `yaml:"separator"`
	Regex        *string  `yaml:"regex"`
	TargetLabel  string   `yaml:"target_label"`
	Replacement  *string  `yaml:"replacement"`
	Action       string   `yaml:"action"`
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName             string           `yaml:"job_name"`
		KubernetesSDConfigs []map[string]any `yaml:"kubernetes_sd_configs"`
		RelabelConfigs      []relabelRule    `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

// relabel applies rules as Prometheus does (regexes anchored, values
// joined by ";", "(.*)" and "$1" by default); nil means dropped.
func relabel(t *testing.T, labels map[string]string, rules []relabelRule) map[string]string {
	t.Helper()
	out := maps.Clone(labels)
	for _, r := range rules {
		sep, re, repl := ";", "(.*)", "$1"
		if r.Separator != nil {
			sep = *r.Separator
		}
		if r.Regex != nil {
			re = *r.Regex
		}
		if r.Replacement != nil {
			repl = *r.Replacement
		}
		rx := regexp.MustCompile("^(?:" + re + ")$")
		var vals []string
		for _, l := range r.SourceLabels {
			vals = append(vals, out[l])
		}
		val := strings.Join(vals, sep)
		switch r.Action {
		case "keep":
			if !rx.MatchString(val) {
				return nil
			}
		case "drop":
			if rx.MatchString(val) {
				return nil
			}
		case "", "replace":
			m := rx.FindStringSubmatchIndex(val)
			if m == nil {
				continue
			}
			if v := string(rx.ExpandString(nil, repl, val, m)); v != "" {
				out[r.TargetLabel] = v
			} else {
				delete(out, r.TargetLabel)
			}
		case "labeldrop":
			for k := range out {
				if rx.MatchString(k) {
					delete(out, k)
				}
			}
		default:
			t.Fatalf("relabel action %q: this test knows keep, drop, replace and labeldrop", r.Action)
		}
	}
	return out
}

var metaName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// discovered are the targets Prometheus's kubernetes_sd (role: pod) finds
// for a pod made from the template: one per container port, init
// containers marked.
func discovered(podName, ip string, w workload) []map[string]string {
	var out []map[string]string
	base := map[string]string{"__meta_kubernetes_pod_name": podName, "__meta_kubernetes_pod_ip": ip}
	for k, v := range w.Spec.Template.Metadata.Labels {
		base["__meta_kubernetes_pod_label_"+metaName.ReplaceAllString(k, "_")] = v
	}
	for k, v := range w.Spec.Template.Metadata.Annotations {
		base["__meta_kubernetes_pod_annotation_"+metaName.ReplaceAllString(k, "_")] = v
	}
	add := func(c container, init bool) {
		if len(c.Ports) == 0 {
			l := maps.Clone(base)
			l["__address__"], l["__meta_kubernetes_pod_container_name"], l["__meta_kubernetes_pod_container_init"] = ip, c.Name, strconv.FormatBool(init)
			out = append(out, l)
		}
		for _, p := range c.Ports {
			l := maps.Clone(base)
			l["__address__"] = net.JoinHostPort(ip, strconv.Itoa(p.ContainerPort))
			l["__meta_kubernetes_pod_container_name"], l["__meta_kubernetes_pod_container_init"] = c.Name, strconv.FormatBool(init)
			l["__meta_kubernetes_pod_container_port_name"], l["__meta_kubernetes_pod_container_port_number"] = p.Name, strconv.Itoa(p.ContainerPort)
			out = append(out, l)
		}
	}
	for _, c := range w.Spec.Template.Spec.InitContainers {
		add(c, true)
	}
	for _, c := range w.Spec.Template.Spec.Containers {
		add(c, false)
	}
	return out
}

// prometheusFiles returns the rendered Prometheus Deployment and the
// content of the files its ConfigMap volumes hold, by mount path.
func prometheusFiles(t *testing.T, s *stack) (workload, map[string]string) {
	t.Helper()
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Image        string `yaml:"image"`
						Args         []string
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	o := s.get(t, "Deployment", "prometheus")
	o.decode(t, &d)
	files := map[string]string{}
	c := d.Spec.Template.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			data, ok := s.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s mounts ConfigMap %s, which is not rendered", v.Name, v.ConfigMap.Name)
			}
			for k, content := range data {
				files[path.Join(m.MountPath, k)] = content
			}
		}
	}
	files["image"] = c.Image
	for _, a := range c.Args {
		if f, ok := strings.CutPrefix(a, "--config.file="); ok {
			files["config.file"] = f
		}
	}
	var w workload
	o.decode(t, &w)
	return w, files
}

// TestPrometheusLabelsEveryPodWithItsNativeJob: the console's panels and
// the overview query the recording rules by job and instance, so the
// relabelings must turn each rendered pod into the job the native stack
// gives its component (topology.Scrape), scraped at its metrics port, with
// the pod's name as instance; and nothing else is scraped.
func TestPrometheusLabelsEveryPodWithItsNativeJob(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			_, files := prometheusFiles(t, s)
			raw, ok := files[files["config.file"]]
			if !ok {
				t.Fatalf("--config.file=%s is in no mounted ConfigMap", files["config.file"])
			}
			var cfg promConfig
			if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
				t.Fatal(err)
			}
			if len(cfg.ScrapeConfigs) != 1 || len(cfg.ScrapeConfigs[0].KubernetesSDConfigs) != 1 || cfg.ScrapeConfigs[0].KubernetesSDConfigs[0]["role"] != "pod" {
				t.Fatalf("want one scrape job discovering pods (kubernetes_sd_configs role: pod): %+v", cfg.ScrapeConfigs)
			}
			sc := cfg.ScrapeConfigs[0]

			// Which container port serves each job's /metrics: the native
			// one's name, except the gateway's (its admin port is loopback).
			gwEnv := s.env(t, s.workload(t, "Deployment", topology.Gateway).Spec.Template.Spec.Containers[0])
			want := map[string]string{} // job -> port
			for _, c := range topology.Native() {
				job, portName, ok := topology.Scrape(c)
				if _, done := want[job]; !ok || done {
					continue // every pod of a binary is its first clone
				}
				p := nativePort(t, c.Name, portName)
				if c.Name == topology.Gateway {
					p = observePort(t, gwEnv)
				}
				want[job] = strconv.Itoa(p)
			}

			got := map[string]string{}
			for _, kind := range []string{"Deployment", "StatefulSet"} {
				for i, o := range s.find(kind) {
					var w workload
					o.decode(t, &w)
					pod := o.Metadata.Name + "-0"
					ip := fmt.Sprintf("10.1.%d.%d", len(kind), i+1)
					seen := map[string]bool{}
					for _, d := range discovered(pod, ip, w) {
						l := relabel(t, d, sc.RelabelConfigs)
						if l == nil {
							continue
						}
						job, addr := l["job"], l["__address__"]
						if job == "" {
							job = sc.JobName
						}
						host, port, _ := net.SplitHostPort(addr)
						if host != ip || l["instance"] != pod || l["__metrics_path__"] != "/metrics" {
							t.Errorf("%s is scraped at %s%s as instance %q, want its pod's IP, /metrics and instance %s", o.id(), addr, l["__metrics_path__"], l["instance"], pod)
						}
						if seen[addr] {
							continue // the same target from another container port: Prometheus keeps one
						}
						seen[addr] = true
						if prev, dup := got[job]; dup && prev != port {
							t.Errorf("job %s is scraped on ports %s and %s", job, prev, port)
						}
						got[job] = port
					}
				}
			}
			for job, port := range want {
				if got[job] != port {
					t.Errorf("job %s is scraped on port %q, want %s: the native job of that component, at its metrics port", job, got[job], port)
				}
			}
			for job := range got {
				if _, ok := want[job]; !ok {
					t.Errorf("job %s is scraped but is no native job (topology.Scrape)", job)
				}
			}
		})
	}
}

// TestPrometheusRunsTheNativeRules: the rules ConfigMap is the very file
// the native stack and compose load, mounted where the config's
// rule_files looks, and the image is compose's.
func TestPrometheusRunsTheNativeRules(t *testing.T) {
	native, err := os.ReadFile(nativeRules)
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(compose, &cf); err != nil {
		t.Fatal(err)
	}
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			_, files := prometheusFiles(t, s)
			var cfg promConfig
			if err := yaml.Unmarshal([]byte(files[files["config.file"]]), &cfg); err != nil {
				t.Fatal(err)
			}
			if len(cfg.RuleFiles) != 1 {
				t.Fatalf("rule_files %v, want the one rules file", cfg.RuleFiles)
			}
			got, ok := files[cfg.RuleFiles[0]]
			if !ok {
				t.Fatalf("rule_files names %s, which no mounted ConfigMap holds", cfg.RuleFiles[0])
			}
			if got != string(native) {
				t.Errorf("the rules Prometheus loads (%s) are not %s byte for byte", cfg.RuleFiles[0], nativeRules)
			}
			if want := cf.Services[topology.PrometheusServer].Image; files["image"] != want || want == "" {
				t.Errorf("Prometheus runs %q, docker-compose.yml %q: one version on both", files["image"], want)
			}
		})
	}
}

// TestOnlyPrometheusHoldsAServiceAccountToken: discovery needs one, and
// its Role reads pods in the namespace and nothing more.
func TestOnlyPrometheusHoldsAServiceAccountToken(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			for _, o := range append(s.find("Deployment"), s.find("StatefulSet")...) {
				var w struct {
					Spec struct {
						Template struct {
							Spec struct {
								Automount          *bool  `yaml:"automountServiceAccountToken"`
								ServiceAccountName string `yaml:"serviceAccountName"`
							} `yaml:"spec"`
						} `yaml:"template"`
					} `yaml:"spec"`
				}
				o.decode(t, &w)
				pod := w.Spec.Template.Spec
				mounts := pod.Automount == nil || *pod.Automount
				if wantToken := o.Metadata.Name == "prometheus"; mounts != wantToken {
					t.Errorf("%s mounts a service-account token: %v, want %v", o.id(), mounts, wantToken)
				}
			}
			var role struct {
				Rules []struct {
					APIGroups []string `yaml:"apiGroups"`
					Resources []string `yaml:"resources"`
					Verbs     []string `yaml:"verbs"`
				} `yaml:"rules"`
			}
			s.get(t, "Role", "prometheus").decode(t, &role)
			if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"pods"}) || !slices.Equal(role.Rules[0].Verbs, []string{"get", "list", "watch"}) {
				t.Errorf("Role prometheus grants %+v, want get/list/watch on pods alone", role.Rules)
			}
			if len(s.find("ClusterRole")) != 0 || len(s.find("ClusterRoleBinding")) != 0 {
				t.Error("a ClusterRole: Prometheus discovers the pods of its own namespace only")
			}
		})
	}
}

// peerRules flattens a policy's rules into "peer port" strings: peer is
// the app a podSelector names, "dns" for kube-dns, "any" for no peer.
type policyRules struct {
	Spec struct {
		PodSelector selector `yaml:"podSelector"`
		Ingress     []peerRule
		Egress      []peerRule
	} `yaml:"spec"`
}

type peerRule struct {
	From  []peer `yaml:"from"`
	To    []peer `yaml:"to"`
	Ports []struct {
		Port int `yaml:"port"`
	} `yaml:"ports"`
}

type peer struct {
	PodSelector       *selector `yaml:"podSelector"`
	NamespaceSelector *selector `yaml:"namespaceSelector"`
}

func flatten(rules []peerRule) []string {
	var out []string
	for _, r := range rules {
		peers := slices.Concat(r.From, r.To)
		names := []string{}
		for _, p := range peers {
			switch {
			case p.NamespaceSelector != nil && p.PodSelector != nil && p.PodSelector.MatchLabels["k8s-app"] == "kube-dns":
				names = append(names, "dns")
			case p.PodSelector != nil && p.NamespaceSelector == nil && p.PodSelector.MatchLabels["app.kubernetes.io/name"] != "":
				names = append(names, p.PodSelector.MatchLabels["app.kubernetes.io/name"])
			default:
				names = append(names, fmt.Sprintf("other%+v", p))
			}
		}
		if len(peers) == 0 {
			names = append(names, "any")
		}
		for _, n := range names {
			for _, p := range r.Ports {
				if n != "dns" {
					out = append(out, n+" "+strconv.Itoa(p.Port))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestTheConsoleAndPrometheusReachOnlyWhatTheyRead: the console's egress
// is the gateway (public and observe ports), Prometheus and Jaeger's query
// API; Prometheus's is the API server and the metrics port of every job
// it scrapes; the gateway's observe port, the console and Prometheus take
// ingress only from the pods that read them.
func TestTheConsoleAndPrometheusReachOnlyWhatTheyRead(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			s := load(t, dir)
			gwEnv := s.env(t, s.workload(t, "Deployment", topology.Gateway).Spec.Template.Spec.Containers[0])
			observe := strconv.Itoa(observePort(t, gwEnv))
			port := func(component, name string) string { return strconv.Itoa(nativePort(t, component, name)) }
			egress, ingress := map[string][]string{}, map[string][]string{}
			for _, o := range s.find("NetworkPolicy") {
				var np policyRules
				o.decode(t, &np)
				app := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"]
				egress[app] = append(egress[app], flatten(np.Spec.Egress)...)
				ingress[app] = append(ingress[app], flatten(np.Spec.Ingress)...)
			}
			metrics := []string{
				"catalog " + port("catalog-1", "http"), "console " + port(topology.Console, "http"),
				"gateway " + observe, "jaeger " + port(topology.JaegerAllInOne, "metrics"),
				"orders " + port("orders-1", "http"), "prometheus " + port(topology.PrometheusServer, "http"),
				"worker " + port("worker-1", "http"),
			}
			for _, c := range []struct {
				what string
				got  []string
				want []string
			}{
				{"console egress", egress[topology.Console], []string{
					"gateway " + port(topology.Gateway, "http"), "gateway " + observe,
					"jaeger " + port(topology.JaegerAllInOne, "query"), "prometheus " + port(topology.PrometheusServer, "http"),
				}},
				{"prometheus egress", egress["prometheus"], append([]string{"any 443", "any 6443"}, metrics...)},
				{"console ingress", ingress[topology.Console], []string{"prometheus " + port(topology.Console, "http")}},
				{"prometheus ingress", ingress["prometheus"], []string{"console " + port(topology.PrometheusServer, "http"), "prometheus " + port(topology.PrometheusServer, "http")}},
				{"gateway ingress", ingress[topology.Gateway], []string{"any " + port(topology.Gateway, "http"), "console " + observe, "prometheus " + observe}},
			} {
				slices.Sort(c.got)
				slices.Sort(c.want)
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s admits %v, want exactly %v", c.what, c.got, c.want)
				}
			}
		})
	}
}
