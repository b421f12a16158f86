package balancer

import "github.com/prometheus/client_golang/prometheus"

// Collector exports every member's state at scrape time, so /metrics shows
// what /admin/backends shows: load balancing and health over time.
type Collector struct {
	pools                               []*Pool
	healthy, ejected, inFlight, latency *prometheus.Desc
	requests, failures, ejections       *prometheus.Desc
}

// NewCollector names its metrics <prefix>_member_... ("gateway",
// "orders_catalog_client") with pool and member labels; member is the
// member's Label (host:port), as on every other metric and span.
func NewCollector(prefix string, pools ...*Pool) *Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+"_member_"+name, help, []string{"pool", "member"}, nil)
	}
	return &Collector{
		pools:     pools,
		healthy:   desc("healthy", "1 while the member passes its active health checks."),
		ejected:   desc("ejected", "1 while the member is ejected for consecutive failures (outlier ejection)."),
		inFlight:  desc("in_flight", "Requests the member is serving now."),
		latency:   desc("latency_ewma_seconds", "The member's latency estimate that P2C-EWMA balances on."),
		requests:  desc("requests_total", "Requests sent to the member."),
		failures:  desc("failures_total", "Requests to the member that failed (connect error, timeout, 5xx)."),
		ejections: desc("ejections_total", "Times the member was ejected."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.healthy, c.ejected, c.inFlight, c.latency, c.requests, c.failures, c.ejections} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	bool01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range c.pools {
		for _, m := range p.Status().Members {
			labels := []string{p.Name, m.Member}
			ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, bool01(m.Healthy), labels...)
			ch <- prometheus.MustNewConstMetric(c.ejected, prometheus.GaugeValue, bool01(m.Ejected), labels...)
			ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(m.InFlight), labels...)
			ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, m.LatencyMS/1e3, labels...)
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(m.Requests), labels...)
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(m.Failures), labels...)
			ch <- prometheus.MustNewConstMetric(c.ejections, prometheus.CounterValue, float64(m.Ejections), labels...)
		}
	}
}
