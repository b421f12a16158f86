package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/services/console/internal/concepts"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

// palette colours a chart's lines; the legend uses the same order.
var palette = []string{"#2f7ed8", "#e4572e", "#29a35a", "#9b59b6", "#f0a202", "#17a2b8", "#7f8c8d", "#c0392b"}

// sparkline draws series over [start, end] as an inline SVG, scaled from 0
// (or the lowest value, when negative) to the highest value of any line.
func sparkline(series []sources.Series, start, end time.Time, width, height int) template.HTML {
	lo, hi := 0.0, 0.0
	for _, s := range series {
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	span := end.Sub(start).Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" preserveAspectRatio="none">`, width, height, width, height)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/>`, height-1, width, height-1)
	for i, s := range series {
		if len(s.Points) == 0 {
			continue
		}
		var pts []string
		for _, p := range s.Points {
			x := float64(width) * p.T.Sub(start).Seconds() / span
			y := float64(height-2) - (p.V-lo)/(hi-lo)*float64(height-4)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, palette[i%len(palette)], strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value written above is a number or a constant
}

// formatValue prints a number in a panel's unit.
func formatValue(v float64, unit concepts.Unit) string {
	switch unit {
	case concepts.Ratio:
		return fmt.Sprintf("%.0f %%", v*100)
	case concepts.Seconds:
		switch {
		case v == 0:
			return "0 s"
		case v < 0.001:
			return fmt.Sprintf("%.0f µs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.1f ms", v*1e3)
		default:
			return fmt.Sprintf("%.2f s", v)
		}
	case concepts.Bytes:
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		default:
			return fmt.Sprintf("%.0f B", v)
		}
	case concepts.PerSecond:
		return fmt.Sprintf("%.1f/s", v)
	case concepts.Cores:
		return fmt.Sprintf("%.2f cores", v)
	default:
		return fmt.Sprintf("%.4g", v)
	}
}
