package telemetry

import (
	"log/slog"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
)

// RegisterCPUQuota exports the CPU quota the kernel enforces on this
// process and logs it beside the GOMAXPROCS the runtime uses, so a reader
// of any clone's log or /metrics sees how big a machine it is.
func RegisterCPUQuota(reg prometheus.Registerer, logger *slog.Logger) {
	q, err := cpuquota.Of(0)
	if err != nil {
		logger.Warn("cannot read this process's CPU quota; process_cpu_quota_cores shows 0", "err", err)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "process_cpu_quota_cores",
		Help: "CPU quota the kernel enforces on this process's cgroup, in cores (0: none, the process may use every core).",
	}, func() float64 {
		// Read at each scrape: the quota is the kernel's, and may be
		// changed under a running process.
		q, err := cpuquota.Of(0)
		if err != nil {
			return 0
		}
		return q.Cores
	}))
	logger.Info("cpu", "gomaxprocs", runtime.GOMAXPROCS(0), "cpu_quota_cores", q.Cores,
		"cpu_quota", q.String(), "cgroup", q.Cgroup, "cfs_period", q.Period.String(), "num_cpu", runtime.NumCPU())
}
