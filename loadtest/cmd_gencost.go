package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// helloEnv makes this binary a minimal HTTP server instead: the target of
// generator-cost, in a process of its own so its CPU is not the generator's.
const helloEnv = "LOADTEST_HELLO_ADDR"

func serveHello(addr string) error {
	body := []byte(`{"id":1,"name":"a product of about the size the catalog answers"}`)
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
}

// cmdGeneratorCost measures what the load generator itself costs: its own
// CPU per request against a server that does nothing, at a few rates, with
// bare vegeta (the library's Attacker) in the same run for comparison. A
// capacity run is only honest while this stays small next to the server's.
func cmdGeneratorCost(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("generator-cost", flag.ContinueOnError)
	fs.SetOutput(stdout)
	rates := fs.String("rates", "500,2000,4000", "request rates to measure, per second")
	dur := fs.Duration("duration", 5*time.Second, "length of each measurement")
	profile := fs.String("cpuprofile", "", "write the engine's CPU profile at the last rate to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.CommandContext(ctx, self)
	srv.Env = append(os.Environ(), helloEnv+"="+addr)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := "http://" + addr + "/api/products/1"
	if err := waitHTTP(ctx, url); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tengine CPU µs/req\tengine p50 ms\tengine p99 ms\tvegeta CPU µs/req\tvegeta p50 ms\tvegeta p99 ms\t")
	list := strings.Split(*rates, ",")
	for i, r := range list {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rate <= 0 {
			return fmt.Errorf("-rates: %q", r)
		}
		var stopProfile func()
		if *profile != "" && i == len(list)-1 {
			f, err := os.Create(*profile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		}
		sched, err := engine.NewSchedule([]engine.Stage{{Name: "steady", From: float64(rate), To: float64(rate), Duration: *dur}})
		if err != nil {
			return err
		}
		res, err := engine.Run(ctx, engine.Config{Schedule: sched, Names: []string{"get"}, MaxWorkers: 256,
			Next: func() engine.Request { return engine.Request{Method: http.MethodGet, URL: url} }})
		if stopProfile != nil {
			stopProfile()
		}
		if err != nil {
			return err
		}
		if res.Aborted != "" {
			return fmt.Errorf("engine at %d/s: %s", rate, res.Aborted)
		}
		vcpu, vp50, vp99 := vegetaCost(rate, *dur, url)
		fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t\n", rate, res.Generator.CPUPerRequestUS, res.Total.P50, res.Total.P99, vcpu, vp50, vp99)
		tw.Flush()
	}
	return nil
}

// vegetaCost runs the library's own Attacker at rate for d against url and
// returns its CPU per request (µs) and latency (ms).
func vegetaCost(rate int, d time.Duration, url string) (cpuUS, p50, p99 float64) {
	atk := vegeta.NewAttacker(vegeta.MaxWorkers(256), vegeta.KeepAlive(true), vegeta.Connections(256))
	tgt := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url})
	var m vegeta.Metrics
	cpu0 := processCPU()
	for res := range atk.Attack(tgt, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, "cost") {
		m.Add(res)
	}
	cpu := processCPU() - cpu0
	m.Close()
	if m.Requests == 0 {
		return 0, 0, 0
	}
	return float64(cpu.Nanoseconds()) / 1000 / float64(m.Requests), float64(m.Latencies.P50) / 1e6, float64(m.Latencies.P99) / 1e6
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the hello server at %s did not answer: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
