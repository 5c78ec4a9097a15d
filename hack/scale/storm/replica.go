package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flagops/flagops/hack/internal/benchns"
)

const flipKeyName = benchns.FlipKey

// build builds the flagops binary to bin.
func build(ctx context.Context, bin string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/flagops/flagops/cmd/flagops")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/flagops: %w\n%s", err, out)
	}
	return bin, nil
}

func writeNamespace(dir string) error { return benchns.WriteDir(dir) }

// replica is one `flagops serve --dir` process on a fixed loopback address.
type replica struct {
	addr, log string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
}

// fleet is the replicas; a client's connection attempt goes to one drawn at random
// among the Service's endpoints.
type fleet struct {
	replicas []*replica
	addrs    []string
	// out, with -endpoints ready, is the replica taken out of the endpoints (-1: none).
	out atomic.Int32
}

// pick draws the replica of a connection attempt.
func (f *fleet) pick() int {
	out := int(f.out.Load())
	if out < 0 {
		return rand.N(len(f.addrs))
	}
	i := rand.N(len(f.addrs) - 1)
	if i >= out {
		i++
	}
	return i
}

func startFleet(ctx context.Context, c config, work, dir string) (*fleet, error) {
	f := &fleet{}
	f.out.Store(-1)
	for i := range c.replicas {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			return nil, err
		}
		r := &replica{addr: addr, log: filepath.Join(work, fmt.Sprintf("replica-%d.log", i)),
			args: []string{c.flagops, "serve", "--dir", dir, "--evaluator-bind-address", addr,
				"--max-subscribers", strconv.Itoa(c.maxSubscribers)}}
		f.replicas = append(f.replicas, r)
		f.addrs = append(f.addrs, addr)
		if err := r.start(ctx); err != nil {
			f.stopAll()
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
	}
	return f, nil
}

// start runs the replica and waits until it is ready.
func (r *replica) start(ctx context.Context) error {
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.args[0], r.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait() // how it ended is in its log
		_ = logf.Close()
		close(r.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-r.done:
			return fmt.Errorf("flagops serve exited; see %s", r.log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the replica and waits for it to exit.
func (r *replica) stop(sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig) // it may have exited already
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (f *fleet) stopAll() {
	for _, r := range f.replicas {
		r.stop(syscall.SIGKILL)
	}
}

// usage is a process's resident memory and CPU time.
type usage struct {
	rss int64 // bytes
	cpu time.Duration
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on Linux.
const clockTick = 10 * time.Millisecond

func (r *replica) usage() (usage, error) {
	pid := r.cmd.Process.Pid
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	// Fields after the command name (which may hold spaces) start at state, field 3;
	// utime and stime are fields 14 and 15.
	s := string(st)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return usage{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return usage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return usage{rss: kib << 10, cpu: time.Duration(ut+stime) * clockTick}, err
		}
	}
	return usage{}, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
