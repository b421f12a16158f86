package traceview

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// keyAttributes are shown on a span's line when present: what a reader needs
// to follow the request (which clone, which database node, cache hit or
// miss, which partition and offset), not everything instrumentation records.
var keyAttributes = []string{
	"scaleshop.pool", "scaleshop.member", "scaleshop.retries", "scaleshop.shard",
	"http.response.status_code", "http.route",
	"db.scaleshop.role", "server.address", "db.query.text",
	"cache.hit", "scaleshop.cache.hit",
	"messaging.destination.name", "messaging.destination.partition.id",
	"messaging.kafka.offset", "messaging.kafka.message.offset", "messaging.consumer.group.name",
	"order.id", "order.status",
	"error.type", "exception.message",
}

// Options shape the waterfall.
type Options struct {
	Color    bool // ANSI red for errors
	BarWidth int  // columns of the timeline bar; 0 means 30
}

// Render writes t as an indented waterfall: start offset, duration, a bar
// placed on the trace's timeline, service/instance, operation and key
// attributes. Errors are marked "!"; a Kafka hop shows its queue time.
func Render(w io.Writer, t *Trace, o Options) error {
	width := o.BarWidth
	if width <= 0 {
		width = 30
	}
	fmt.Fprintf(w, "trace %s  %d spans  %s  services: %s\n",
		t.TraceID, len(t.Spans), fmtDur(t.Duration), strings.Join(t.Services, ", "))
	if len(t.Roots) > 1 {
		fmt.Fprintf(w, "warning: %d root spans; context was lost somewhere between them\n", len(t.Roots))
	}
	fmt.Fprintf(w, "%10s %10s  %-*s  %s\n", "OFFSET", "DURATION", width, "TIMELINE", "SERVICE/INSTANCE  OPERATION  ATTRIBUTES")
	for _, s := range t.Spans {
		mark, on, off := " ", "", ""
		if s.Error {
			mark = "!"
			if o.Color {
				on, off = "\x1b[31m", "\x1b[0m"
			}
		}
		who := s.Service
		if s.Instance != "" && s.Instance != s.Service {
			who += "/" + s.Instance
		}
		line := fmt.Sprintf("%s%10s %10s  %s %s%s%s  %s",
			on, fmtDur(s.Offset), fmtDur(s.Duration), bar(t, s, width), mark,
			strings.Repeat("  ", s.Depth), who, s.Operation)
		if s.QueueTime > 0 {
			line += fmt.Sprintf("  [Kafka hop %s after publish began]", fmtDur(s.QueueTime))
		}
		if attrs := attrLine(s); attrs != "" {
			line += "  " + attrs
		}
		if s.Error && s.ErrorText != "" {
			line += "  error=" + strconv.Quote(clip(strings.Join(strings.Fields(s.ErrorText), " "), 160))
		}
		fmt.Fprintln(w, line+off)
	}
	return nil
}

// RenderJSON writes t as indented JSON, spans depth-first.
func RenderJSON(w io.Writer, t *Trace) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

func bar(t *Trace, s *Span, width int) string {
	if t.Duration <= 0 {
		return strings.Repeat("█", width)
	}
	from := int(float64(s.Offset) / float64(t.Duration) * float64(width))
	n := int(float64(s.Duration)/float64(t.Duration)*float64(width) + 0.5)
	from = min(max(from, 0), width-1)
	n = min(max(n, 1), width-from)
	return strings.Repeat("·", from) + strings.Repeat("█", n) + strings.Repeat("·", width-from-n)
}

func attrLine(s *Span) string {
	var parts []string
	for _, k := range keyAttributes {
		v, ok := s.Attrs[k]
		if !ok {
			continue
		}
		v = clip(strings.Join(strings.Fields(v), " "), 80) // multi-line SQL stays on its span's line
		parts = append(parts, shortKey(k)+"="+v)
	}
	return strings.Join(parts, " ")
}

func clip(v string, n int) string {
	if len(v) > n {
		return v[:n-3] + "..."
	}
	return v
}

func shortKey(k string) string {
	for _, p := range []string{"scaleshop.", "http.response.", "db.scaleshop.", "messaging.destination.", "messaging."} {
		if strings.HasPrefix(k, p) {
			return strings.TrimPrefix(k, p)
		}
	}
	return k
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
	}
}
