/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command storm simulates, at 1/100 scale, the reconnect storm that follows the restart of
// one evaluator replica of a fleet behind a Service, on loopback, on this machine:
//
//   - R replicas (default 2) of the real `flagops serve --dir`, over one directory holding
//     the 100-flag bench namespace (hack/internal/benchns), each on its own loopback port;
//   - N native stream clients (default 10,000), GET /v1/stream?userId=u<i>, each connection
//     attempt sent to a replica drawn at random among the Service's endpoints (-endpoints
//     says whether a stopped replica is among them), as a Service's proxy does. A client
//     keeps the ID of the last event it applied and sends it as Last-Event-ID when it reconnects,
//     and waits between attempts by one of two policies (-policy):
//     sdk, the Go provider's (docs/sdk.md: at once, then 500 ms doubling up to 30 s, each
//     delay drawn between half and all of it; a 503's Retry-After waited out as given,
//     without doubling); retry, an EventSource that honours the stream's `retry:` field as
//     given (the evaluator draws it between half and one and a half of its --retry for each
//     stream), doubling while attempts fail, up to 30 s, at least a 503's Retry-After;
//   - once every client holds current values, replica 0 is stopped (-stop kill: SIGKILL;
//     term: SIGINT, which serve handles as SIGTERM: it ends its streams after closing the
//     listener, as in a rolling update) and started again on the same port after -down.
//     From the stop on, FlipKey is flipped -flips times, every -flip-every, by rewriting
//     its manifest (both replicas watch the directory). -accept-rate is each replica's
//     --stream-accept-rate.
//
// It reports the time from the stop until every client holds current values again, each
// client's time without current values, accepted streams (200) and 503s per replica and
// their peak rate over any 1 s window, the surviving replicas' RSS and CPU during the
// storm, and the clients whose final value of FlipKey is not the last one written (missed
// changes; 0 is required).
//
//	go run ./hack/scale/storm -n 10000 -stop term -policy sdk
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flagops/flagops/hack/internal/machine"
	"github.com/flagops/flagops/test/servetest"
)

// Values of -endpoints.
const (
	endpointsReady = "ready"
	endpointsAll   = "all"
)

type config struct {
	n, replicas    int
	flagops        string
	maxSubscribers int
	stop           string
	down           time.Duration
	policy         string
	endpoints      string
	flips          int
	flipEvery      time.Duration
	sources        int
	acceptRate     float64
	settle         time.Duration
	timeout        time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 10000, "number of stream clients")
	flag.IntVar(&c.replicas, "replicas", 2, "number of flagops serve replicas")
	flag.StringVar(&c.flagops, "flagops", "", "flagops binary; empty builds ./cmd/flagops")
	flag.IntVar(&c.maxSubscribers, "max-subscribers", 0, "--max-subscribers of each replica; 0 means -n (a replica can hold every stream)")
	flag.StringVar(&c.stop, "stop", "term", "how replica 0 stops: term (graceful: SIGINT, which serve handles as SIGTERM) or kill (SIGKILL)")
	flag.DurationVar(&c.down, "down", 5*time.Second, "time replica 0 stays down before it starts again")
	flag.StringVar(&c.policy, "policy", "sdk", "clients' reconnection policy: sdk or retry")
	flag.StringVar(&c.endpoints, "endpoints", endpointsReady, "the Service's endpoints while replica 0 is down: ready (it is taken out at its stop, as a terminating pod is) or all (attempts still reach it and are refused, as with a crashed pod before its readiness probe fails)")
	flag.IntVar(&c.flips, "flips", 10, "changes of "+flipKeyName+" made from the stop on")
	flag.DurationVar(&c.flipEvery, "flip-every", 500*time.Millisecond, "interval of the changes")
	flag.Float64Var(&c.acceptRate, "accept-rate", 0, "--stream-accept-rate of each replica: new streams a second (burst as many); 0: no limit")
	flag.IntVar(&c.sources, "sources", 8, "loopback source addresses 127.0.0.2.. the clients dial from (ephemeral ports)")
	flag.DurationVar(&c.settle, "settle", 60*time.Second, "how long to wait, after the storm, for every client to hold the last change")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "overall timeout")
	flag.Parse()
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

func (c *config) check() error {
	switch {
	case c.n < 1:
		return fmt.Errorf("-n: %d is not positive", c.n)
	case c.replicas < 2:
		return fmt.Errorf("-replicas: %d; the storm needs a survivor, at least 2", c.replicas)
	case c.stop != "term" && c.stop != "kill":
		return fmt.Errorf("-stop: %q is neither term nor kill", c.stop)
	case c.policy != policySDK && c.policy != policyRetry:
		return fmt.Errorf("-policy: %q is neither %s nor %s", c.policy, policySDK, policyRetry)
	case c.endpoints != endpointsReady && c.endpoints != endpointsAll:
		return fmt.Errorf("-endpoints: %q is neither %s nor %s", c.endpoints, endpointsReady, endpointsAll)
	case c.sources < 1 || c.sources > 250:
		return fmt.Errorf("-sources: %d is not within 1..250", c.sources)
	case c.maxSubscribers < 0:
		return fmt.Errorf("-max-subscribers: %d is negative", c.maxSubscribers)
	case c.acceptRate < 0:
		return fmt.Errorf("-accept-rate: %g is negative", c.acceptRate)
	case c.flips < 1:
		return fmt.Errorf("-flips: %d; at least one change must be made during the storm", c.flips)
	}
	if c.maxSubscribers == 0 {
		c.maxSubscribers = c.n
	}
	return nil
}

func run(c config) error {
	// The clients hold one socket each; each replica process has its own limit, raised
	// by the same hard limit it inherits.
	if err := machine.RaiseFileLimit(uint64(c.n) + 512); err != nil {
		return err
	}
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "storm-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	if c.flagops == "" {
		c.flagops = filepath.Join(work, "flagops")
		if err := servetest.BuildTo(c.flagops); err != nil {
			return err
		}
	}
	dir := filepath.Join(work, "flags")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := writeNamespace(dir); err != nil {
		return err
	}

	fleet, err := startFleet(c, dir)
	if err != nil {
		return err
	}
	defer fleet.stopAll()

	res, err := storm(ctx, c, fleet, dir)
	if err != nil {
		return err
	}
	res.load = strings.Join(strings.Fields(string(load))[:3], " ")
	res.report(os.Stdout, c)
	if res.missed > 0 {
		return fmt.Errorf("%d clients missed a change", res.missed)
	}
	return nil
}
