package topology

import "testing"

func TestNativeIsInDependencyOrder(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Native() {
		for _, d := range c.DependsOn {
			if !seen[d] {
				t.Errorf("%s depends on %s, which comes later or does not exist", c.Name, d)
			}
		}
		if seen[c.Name] {
			t.Errorf("%s listed twice", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestResolveDefaultsOffsetAndOverride(t *testing.T) {
	env := map[string]string{"GATEWAY_PORT": "8000"}
	s, err := Resolve("dev", 0, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Port(Gateway, "http"); got != 8000 {
		t.Errorf("gateway override = %d", got)
	}
	if got := s.Port(PGCatalogReplica, "pg"); got != 5434 {
		t.Errorf("replica default = %d", got)
	}
	test, err := Resolve("test", 10000, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := test.Port(KafkaBroker, "broker"); got != 19092 {
		t.Errorf("test kafka = %d", got)
	}
}

func TestResolveRejectsCollisionsAndGarbage(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"collision": {"CATALOG_2_PORT": "8081"},
		"garbage":   {"KAFKA_PORT": "ninety"},
		"range":     {"KAFKA_PORT": "70000"},
	} {
		if _, err := Resolve("dev", 0, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestShardPlacement(t *testing.T) {
	for shard := range LogicalShards {
		want := PGOrdersA
		if shard >= 4 {
			want = PGOrdersB
		}
		if got := ShardServer(shard); got != want {
			t.Errorf("shard %d on %s, want %s", shard, got, want)
		}
	}
}
