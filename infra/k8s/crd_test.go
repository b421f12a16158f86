package k8s

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No registry these machines reach serves the operators' CRDs, and no API
// server runs here to apply them, so the custom resources are checked
// against schemas of our own: the Go types below, decoded with unknown
// fields rejected, then the rules of the operators' CRDs that matter here
// (required fields, enums, minimums). They cover only the fields the
// manifests use, copied by hand from the CRDs of CloudNativePG 1.30
// (postgresql.cnpg.io/v1 Cluster), Strimzi 1.2 (kafka.strimzi.io/v1 Kafka,
// KafkaNodePool, KafkaTopic) and KEDA 2.20 (keda.sh/v1alpha1 ScaledObject).
// A field the CRD has but these types lack fails here: add it, checked
// against the CRD, when a manifest starts to use it.

var customKinds = map[string]bool{
	"Cluster": true, "Kafka": true, "KafkaNodePool": true, "KafkaTopic": true, "ScaledObject": true,
}

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type quantities struct {
	CPU    string `yaml:"cpu"`
	Memory string `yaml:"memory"`
}

type resources struct {
	Requests quantities `yaml:"requests"`
	Limits   quantities `yaml:"limits"`
}

// spreadConstraint is the core TopologySpreadConstraint, as the operators embed it.
type spreadConstraint struct {
	MaxSkew           int      `yaml:"maxSkew"`
	TopologyKey       string   `yaml:"topologyKey"`
	WhenUnsatisfiable string   `yaml:"whenUnsatisfiable"`
	LabelSelector     selector `yaml:"labelSelector"`
	MatchLabelKeys    []string `yaml:"matchLabelKeys"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type cnpgCluster struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		Instances int    `yaml:"instances"`
		ImageName string `yaml:"imageName"`
		Bootstrap struct {
			Initdb struct {
				Database    string   `yaml:"database"`
				Owner       string   `yaml:"owner"`
				PostInitSQL []string `yaml:"postInitSQL"`
			} `yaml:"initdb"`
		} `yaml:"bootstrap"`
		Postgresql struct {
			Parameters  map[string]string `yaml:"parameters"`
			Synchronous *struct {
				Method string `yaml:"method"`
				Number int    `yaml:"number"`
			} `yaml:"synchronous"`
		} `yaml:"postgresql"`
		Storage struct {
			Size         string `yaml:"size"`
			StorageClass string `yaml:"storageClass"`
		} `yaml:"storage"`
		Resources resources `yaml:"resources"`
		Affinity  struct {
			EnablePodAntiAffinity *bool  `yaml:"enablePodAntiAffinity"`
			TopologyKey           string `yaml:"topologyKey"`
		} `yaml:"affinity"`
	} `yaml:"spec"`
}

type kafkaListener struct {
	Name               string           `yaml:"name"`
	Port               int              `yaml:"port"`
	Type               string           `yaml:"type"`
	TLS                *bool            `yaml:"tls"`
	NetworkPolicyPeers []map[string]any `yaml:"networkPolicyPeers"`
}

type strimziKafka struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		Kafka struct {
			Version         string          `yaml:"version"`
			MetadataVersion string          `yaml:"metadataVersion"`
			Listeners       []kafkaListener `yaml:"listeners"`
			Config          map[string]any  `yaml:"config"`
		} `yaml:"kafka"`
		EntityOperator struct {
			TopicOperator *struct{} `yaml:"topicOperator"`
			UserOperator  *struct{} `yaml:"userOperator"`
		} `yaml:"entityOperator"`
	} `yaml:"spec"`
}

type strimziNodePool struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		Replicas int      `yaml:"replicas"`
		Roles    []string `yaml:"roles"`
		Storage  struct {
			Type    string `yaml:"type"`
			Volumes []struct {
				ID            *int   `yaml:"id"`
				Type          string `yaml:"type"`
				Size          string `yaml:"size"`
				KraftMetadata string `yaml:"kraftMetadata"`
				DeleteClaim   *bool  `yaml:"deleteClaim"`
			} `yaml:"volumes"`
		} `yaml:"storage"`
		Resources  resources         `yaml:"resources"`
		JVMOptions map[string]string `yaml:"jvmOptions"`
		Template   struct {
			Pod struct {
				TopologySpreadConstraints []spreadConstraint `yaml:"topologySpreadConstraints"`
			} `yaml:"pod"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type strimziTopic struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		TopicName  string         `yaml:"topicName"`
		Partitions int            `yaml:"partitions"`
		Replicas   int            `yaml:"replicas"`
		Config     map[string]any `yaml:"config"`
	} `yaml:"spec"`
}

type kedaScaledObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int `yaml:"minReplicaCount"`
		MaxReplicaCount *int `yaml:"maxReplicaCount"`
		PollingInterval int  `yaml:"pollingInterval"`
		CooldownPeriod  int  `yaml:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Name     string            `yaml:"name"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// kedaKafkaMetadata are the kafka scaler's trigger settings this project
// may use (KEDA's pkg/scalers/kafka_scaler.go); values are strings.
var kedaKafkaMetadata = map[string]bool{
	"bootstrapServers": true, "consumerGroup": true, "topic": true, "lagThreshold": true,
	"activationLagThreshold": true, "offsetResetPolicy": true, "allowIdleConsumers": true,
	"excludePersistentLag": true, "limitToPartitionsWithLag": true, "scaleToZeroOnInvalidOffset": true,
}

var (
	quantity    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$`)
	k8sName     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	kafkaTopic  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	kafkaFormat = regexp.MustCompile(`^4\.[0-9]+\.[0-9]+$`)
)

// checkCustom decodes one custom resource strictly into its type and
// applies the CRD's rules; it returns every problem found.
func checkCustom(o object) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	strict := func(v any) bool {
		dec := yaml.NewDecoder(bytes.NewReader(o.raw))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			fail("%v", err)
			return false
		}
		return true
	}
	checkResources := func(r resources) {
		for _, q := range []string{r.Requests.CPU, r.Requests.Memory, r.Limits.CPU, r.Limits.Memory} {
			if q != "" && !quantity.MatchString(q) {
				fail("resource quantity %q is not a Kubernetes quantity", q)
			}
		}
	}
	wantAPI := map[string]string{
		"Cluster": "postgresql.cnpg.io/v1", "Kafka": "kafka.strimzi.io/v1", "KafkaNodePool": "kafka.strimzi.io/v1",
		"KafkaTopic": "kafka.strimzi.io/v1", "ScaledObject": "keda.sh/v1alpha1",
	}[o.Kind]
	if o.APIVersion != wantAPI {
		fail("apiVersion %q; the schema here is for %s", o.APIVersion, wantAPI)
	}
	if !k8sName.MatchString(o.Metadata.Name) {
		fail("name %q is not a DNS label", o.Metadata.Name)
	}
	switch o.Kind {
	case "Cluster":
		var c cnpgCluster
		if !strict(&c) {
			break
		}
		s := c.Spec
		if s.Instances < 1 {
			fail("spec.instances = %d, want at least 1 (required)", s.Instances)
		}
		if s.Storage.Size == "" || !quantity.MatchString(s.Storage.Size) {
			fail("spec.storage.size %q must be a quantity", s.Storage.Size)
		}
		if i := s.Bootstrap.Initdb; i.Database == "" || i.Owner == "" {
			fail("spec.bootstrap.initdb needs database and owner (the -app secret's user)")
		}
		if sy := s.Postgresql.Synchronous; sy != nil {
			if sy.Method != "any" && sy.Method != "first" {
				fail("spec.postgresql.synchronous.method %q: want any or first", sy.Method)
			}
			if sy.Number < 1 || sy.Number >= s.Instances {
				fail("spec.postgresql.synchronous.number %d needs 1 <= n < instances (%d)", sy.Number, s.Instances)
			}
		}
		checkResources(s.Resources)
	case "Kafka":
		var k strimziKafka
		if !strict(&k) {
			break
		}
		if !kafkaFormat.MatchString(k.Spec.Kafka.Version) {
			fail("spec.kafka.version %q: Strimzi 1.2 runs Kafka 4.x", k.Spec.Kafka.Version)
		}
		if len(k.Spec.Kafka.Listeners) == 0 {
			fail("spec.kafka.listeners is required")
		}
		for _, l := range k.Spec.Kafka.Listeners {
			if l.Name == "" || l.Port < 9092 || l.TLS == nil {
				fail("listener %+v needs name, port >= 9092 and tls", l)
			}
			if l.Type != "internal" && l.Type != "cluster-ip" && l.Type != "route" && l.Type != "loadbalancer" && l.Type != "nodeport" && l.Type != "ingress" {
				fail("listener %s type %q is not a Strimzi listener type", l.Name, l.Type)
			}
		}
	case "KafkaNodePool":
		var p strimziNodePool
		if !strict(&p) {
			break
		}
		if p.Spec.Replicas < 1 || len(p.Spec.Roles) == 0 || p.Spec.Storage.Type == "" {
			fail("spec.replicas, spec.roles and spec.storage are required")
		}
		for _, r := range p.Spec.Roles {
			if r != "controller" && r != "broker" {
				fail("role %q: want controller or broker", r)
			}
		}
		for _, v := range p.Spec.Storage.Volumes {
			if v.ID == nil || !quantity.MatchString(v.Size) {
				fail("storage volume needs an id and a size quantity")
			}
		}
		for k := range p.Spec.JVMOptions {
			if k != "-Xms" && k != "-Xmx" {
				fail("jvmOptions %q is not used here", k)
			}
		}
		checkResources(p.Spec.Resources)
		if p.Metadata.Labels["strimzi.io/cluster"] == "" {
			fail("a KafkaNodePool needs the label strimzi.io/cluster naming its Kafka")
		}
	case "KafkaTopic":
		var tp strimziTopic
		if !strict(&tp) {
			break
		}
		if !kafkaTopic.MatchString(tp.Spec.TopicName) {
			fail("spec.topicName %q is not a Kafka topic name", tp.Spec.TopicName)
		}
		if tp.Spec.Partitions < 1 || tp.Spec.Replicas < 1 {
			fail("spec.partitions and spec.replicas must be at least 1")
		}
		if tp.Metadata.Labels["strimzi.io/cluster"] == "" {
			fail("a KafkaTopic needs the label strimzi.io/cluster naming its Kafka")
		}
	case "ScaledObject":
		var so kedaScaledObject
		if !strict(&so) {
			break
		}
		if so.Spec.ScaleTargetRef.Name == "" || len(so.Spec.Triggers) == 0 {
			fail("spec.scaleTargetRef.name and spec.triggers are required")
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "kafka" {
				fail("trigger type %q: only the kafka scaler is used here", tr.Type)
			}
			for k := range tr.Metadata {
				if !kedaKafkaMetadata[k] {
					fail("kafka trigger metadata %q is not a setting of KEDA's kafka scaler", k)
				}
			}
			for _, k := range []string{"bootstrapServers", "consumerGroup"} {
				if tr.Metadata[k] == "" {
					fail("kafka trigger needs %s", k)
				}
			}
		}
	default:
		fail("no schema for kind %s", o.Kind)
	}
	return errs
}

func TestCustomResourcesMatchTheOperatorsSchemas(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			seen := map[string]int{}
			for _, o := range render(t, dir) {
				if !customKinds[o.Kind] {
					continue
				}
				seen[o.Kind]++
				for _, e := range checkCustom(o) {
					t.Errorf("%s: %s", o.id(), e)
				}
			}
			for kind := range customKinds {
				if seen[kind] == 0 {
					t.Errorf("no %s rendered", kind)
				}
			}
		})
	}
}

func TestTheCustomResourceSchemasRejectBrokenObjects(t *testing.T) {
	for _, tc := range []struct {
		file, finding string
	}{
		{"testdata/cnpg-misspelt-field.yaml", "postInitSql"},
		{"testdata/kafkatopic-wrong-type.yaml", "`six` into int"},
		{"testdata/scaledobject-unknown-setting.yaml", "lagTreshold"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stream, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := splitObjects(stream)
			if err != nil || len(objs) != 1 {
				t.Fatalf("%s: want one object: %v", tc.file, err)
			}
			errs := checkCustom(objs[0])
			if len(errs) == 0 {
				t.Fatalf("%s passed; it must fail on %q", tc.file, tc.finding)
			}
			if !strings.Contains(strings.Join(errs, "\n"), tc.finding) {
				t.Errorf("%s failed without naming %q: %v", tc.file, tc.finding, errs)
			}
		})
	}
}
