package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// launcher is how stackctl brings up one component: first-run preparation,
// the process, its readiness check and what to do once it is ready.
type launcher struct {
	prepare      func(ctx context.Context) error
	spec         func() (procSpec, error)
	ready        func(ctx context.Context) error
	readyTimeout time.Duration
	afterReady   func(ctx context.Context) error
}

// artifacts are the installed things components run from.
type artifacts struct {
	pg        pgUser
	kafkaLibs string
	jaeger    *jaegerBuild // may still be building when the stack starts
	binDir    string       // this module's built services
}

func (e *environment) launcherFor(c topology.Component, a artifacts) launcher {
	switch c.Kind {
	case topology.Postgres:
		return e.postgresLauncher(c, a)
	case topology.Memcached:
		return e.memcachedLauncher(c)
	case topology.Kafka:
		return e.kafkaLauncher(c, a)
	case topology.Jaeger:
		return e.jaegerLauncher(c, a)
	case topology.Prometheus:
		return e.prometheusLauncher(c)
	default:
		return e.serviceLauncher(c, a)
	}
}

func (e *environment) postgresLauncher(c topology.Component, a artifacts) launcher {
	l := launcher{
		spec:         func() (procSpec, error) { return e.postgresSpec(a.pg, c.Name), nil },
		ready:        func(ctx context.Context) error { return pgReady(ctx, e.adminDSN(c.Name, "postgres")) },
		readyTimeout: 60 * time.Second,
	}
	switch c.Name {
	case topology.PGCatalogReplica:
		l.prepare = func(ctx context.Context) error { return e.initReplica(ctx, a.pg, c.Name) }
		l.afterReady = func(ctx context.Context) error {
			e.say("%s: verifying streaming replication", c.Name)
			return e.waitReady(ctx, nil, 30*time.Second, e.verifyStreaming)
		}
	case topology.PGCatalogPrimary:
		l.prepare = func(ctx context.Context) error { return e.initCluster(ctx, a.pg, c.Name) }
		l.afterReady = func(ctx context.Context) error {
			return e.bootstrapCluster(ctx, c.Name, []string{"catalog"})
		}
	default:
		l.prepare = func(ctx context.Context) error { return e.initCluster(ctx, a.pg, c.Name) }
		var dbs []string
		for shard := range topology.LogicalShards {
			if topology.ShardServer(shard) == c.Name {
				dbs = append(dbs, topology.ShardDatabase(shard))
			}
		}
		l.afterReady = func(ctx context.Context) error { return e.bootstrapCluster(ctx, c.Name, dbs) }
	}
	return l
}

func (e *environment) memcachedLauncher(c topology.Component) launcher {
	addr := e.stack.Addr(c.Name, "memcache")
	return launcher{
		spec: func() (procSpec, error) {
			return procSpec{
				path: "/usr/bin/memcached",
				// -U 0: no UDP (amplification risk, unused). -u: it refuses root.
				args: []string{"-p", strconv.Itoa(e.stack.Port(c.Name, "memcache")), "-l", "127.0.0.1",
					"-U", "0", "-m", "64", "-t", "2", "-c", "1024", "-u", "memcache"},
				env: []string{"PATH=/usr/bin:/bin"},
			}, nil
		},
		ready:        func(ctx context.Context) error { return memcachedVersion(ctx, addr) },
		readyTimeout: 15 * time.Second,
	}
}

func memcachedVersion(ctx context.Context, addr string) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION") {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

func (e *environment) kafkaLauncher(c topology.Component, a artifacts) launcher {
	dir := e.path("kafka")
	props := filepath.Join(dir, "server.properties")
	broker := e.stack.Addr(c.Name, "broker")
	classpath := filepath.Join(a.kafkaLibs, "*")
	java := func(mainClass string, args ...string) *exec.Cmd {
		return exec.Command("java", append([]string{"-cp", classpath, mainClass}, args...)...)
	}
	return launcher{
		prepare: func(ctx context.Context) error {
			if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
				return err
			}
			if err := e.writeKafkaProperties(c, props, filepath.Join(dir, "data")); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, "data", "meta.properties")); err == nil {
				return nil
			}
			e.say("kafka: formatting KRaft storage (first run)")
			id, err := java("kafka.tools.StorageTool", "random-uuid").Output()
			if err != nil {
				return fmt.Errorf("kafka storage random-uuid: %w", err)
			}
			out, err := java("kafka.tools.StorageTool", "format", "-t", strings.TrimSpace(string(id)),
				"-c", props, "--ignore-formatted").CombinedOutput()
			if err != nil {
				return fmt.Errorf("kafka storage format: %v\n%s", err, out)
			}
			return nil
		},
		spec: func() (procSpec, error) {
			log4j := filepath.Join(e.repo, "infra", "local", "kafka", "log4j.properties")
			return procSpec{
				path: "java",
				args: []string{
					"-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
					"-Djava.awt.headless=true",
					"-Dlog4j.configuration=file:" + log4j,
					"-cp", classpath, "kafka.Kafka", props,
				},
				env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir},
			}, nil
		},
		ready:        func(ctx context.Context) error { return kafkax.Ping(ctx, []string{broker}) },
		readyTimeout: 120 * time.Second,
		afterReady: func(ctx context.Context) error {
			return e.waitReady(ctx, nil, 60*time.Second, func(ctx context.Context) error {
				var topics []kafkax.Topic
				for _, name := range topology.Topics() {
					topics = append(topics, kafkax.Topic{Name: name, Partitions: topology.TopicPartitions})
				}
				return kafkax.EnsureTopics(ctx, broker, topics...)
			})
		},
	}
}

func (e *environment) writeKafkaProperties(c topology.Component, path, dataDir string) error {
	return e.renderTemplate(path, filepath.Join("infra", "local", "kafka", "server.properties.tmpl"), map[string]any{
		"BrokerPort":     e.stack.Port(c.Name, "broker"),
		"ControllerPort": e.stack.Port(c.Name, "controller"),
		"DataDir":        dataDir,
		"Partitions":     topology.TopicPartitions,
	})
}

// renderTemplate writes the repository's template tmpl (a path relative to
// the repository root), executed with data, to path.
func (e *environment) renderTemplate(path, tmpl string, data any) error {
	t, err := template.ParseFiles(filepath.Join(e.repo, tmpl))
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (e *environment) jaegerLauncher(c topology.Component, a artifacts) launcher {
	port := func(n string) string { return strconv.Itoa(e.stack.Port(c.Name, n)) }
	health := "http://" + e.stack.Addr(c.Name, "health") + "/status"
	var bin string
	return launcher{
		// On a first run the binary is still being built: Jaeger starts
		// the moment it exists.
		prepare: func(ctx context.Context) error {
			var err error
			bin, err = a.jaeger.wait(ctx)
			if err != nil && ctx.Err() == nil {
				// The background build failed; a later `stackctl start
				// jaeger` finds what `stackctl install` built since.
				if path, perr := e.jaegerBinaryPath(); perr == nil && haveProgram(path) {
					bin, err = path, nil
				}
			}
			if err != nil {
				return fmt.Errorf("no Jaeger binary (%w); `stackctl install` builds it, then `stackctl start jaeger`", err)
			}
			return nil
		},
		spec: func() (procSpec, error) {
			return procSpec{
				path: bin,
				args: []string{"--config", filepath.Join(e.repo, "infra", "local", "jaeger", "config.yaml")},
				env: []string{
					"PATH=/usr/bin:/bin",
					"JAEGER_OTLP_GRPC_PORT=" + port("otlp-grpc"),
					"JAEGER_OTLP_HTTP_PORT=" + port("otlp-http"),
					"JAEGER_QUERY_PORT=" + port("query"),
					"JAEGER_QUERY_GRPC_PORT=" + port("query-grpc"),
					"JAEGER_HEALTH_PORT=" + port("health"),
					"JAEGER_METRICS_PORT=" + port("metrics"),
					"JAEGER_MAX_TRACES=" + e.envOr("JAEGER_MAX_TRACES", "50000"),
				},
			}, nil
		},
		ready:        func(ctx context.Context) error { return httpOK(ctx, health) },
		readyTimeout: 60 * time.Second,
	}
}

func (e *environment) serviceLauncher(c topology.Component, a artifacts) launcher {
	readyURL := "http://" + e.stack.Addr(c.Name, "http") + "/readyz"
	return launcher{
		spec: func() (procSpec, error) {
			return procSpec{
				path: filepath.Join(a.binDir, c.Binary),
				env:  e.serviceEnv(c),
			}, nil
		},
		ready:        func(ctx context.Context) error { return httpOK(ctx, readyURL) },
		readyTimeout: 90 * time.Second,
	}
}

func (e *environment) envOr(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
