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

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sampleEvery is how often a process's memory is read from /proc/<pid>/status.
const sampleEvery = 250 * time.Millisecond

// proc is a flagops process started by the harness, as a user would start it, with its
// memory sampled every 250 ms.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time

	mu      sync.Mutex
	rssKB   int64 // the last VmRSS read
	hwmKB   int64 // the highest VmHWM read
	exited  chan struct{}
	waitErr error
}

// startProc starts bin with args, KUBECONFIG set to kubeconfig and env added to the
// environment, and its output in dir/name.log.
func startProc(name, bin, kubeconfig, dir string, env []string, args ...string) (*proc, error) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("failed to create the log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	go p.sample()
	return p, nil
}

// sample reads VmRSS and VmHWM every sampleEvery until the process exits.
func (p *proc) sample() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		if rss, hwm, err := readStatus(path); err == nil {
			p.mu.Lock()
			p.rssKB, p.hwmKB = rss, max(p.hwmKB, hwm)
			p.mu.Unlock()
		}
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
	}
}

// readStatus returns VmRSS and VmHWM, in kB, from a /proc/<pid>/status file.
func readStatus(path string) (rss, hwm int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("failed to parse %s of %s: %w", name, path, err)
		}
		if name == "VmRSS" {
			rss = v
		} else {
			hwm = v
		}
	}
	return rss, hwm, sc.Err()
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// readCPU returns the CPU time (user and system) a process has used, from its
// /proc/<pid>/stat file.
func readCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields count from
	// the last ')'. utime and stime are fields 14 and 15, so the 12th and 13th after it.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("failed to parse %s: too few fields", path)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to parse the CPU times of %s: %w", path, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpu returns the CPU time the process has used so far.
func (p *proc) cpu() (time.Duration, error) {
	return readCPU(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
}

// memMB reads VmRSS and VmHWM now and returns VmRSS and the highest VmHWM, in MB.
func (p *proc) memMB() (rss, peak float64) {
	r, h, err := readStatus(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	p.mu.Lock()
	if err == nil {
		p.rssKB, p.hwmKB = r, max(p.hwmKB, h)
	}
	defer p.mu.Unlock()
	return float64(p.rssKB) / 1024, float64(p.hwmKB) / 1024
}

// waitReady polls url every 50 ms until it answers 200, and returns the time since the
// process started.
func (p *proc) waitReady(ctx context.Context, url string) (time.Duration, error) {
	for {
		if resp, err := http.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s was not ready at %s: %w", p.name, url, ctx.Err())
		case <-p.exited:
			return 0, fmt.Errorf("%s exited before it was ready: %v (see its log)", p.name, p.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the process with SIGTERM, and SIGKILL after 20 s.
func (p *proc) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to stop %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 20 s of SIGTERM and was killed", p.name)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// counters sums the samples of one Prometheus counter in a text exposition by the values
// of some of its labels, joined by spaces (all samples under "" when there are none).
func counters(text, metric string, labels ...string) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		var key []string
		for _, label := range labels {
			if _, rest, ok := strings.Cut(line[:end], ","+label+`="`); ok {
				value, _, _ := strings.Cut(rest, `"`)
				key = append(key, value)
			} else if _, rest, ok := strings.Cut(line[:end], "{"+label+`="`); ok {
				value, _, _ := strings.Cut(rest, `"`)
				key = append(key, value)
			}
		}
		out[strings.TrimSpace(strings.Join(key, " "))] += int64(v)
	}
	return out
}

// diff returns after minus before, leaving out zeros.
func diff(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// scrape returns the text of a plain-HTTP metrics endpoint.
func scrape(url string) (string, error) {
	b, err := scrapeBytes(url)
	return string(b), err
}

// scrapeBytes returns what a plain-HTTP GET of url answers with 200.
func scrapeBytes(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("failed to scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("failed to scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to scrape %s: %s", url, resp.Status)
	}
	return b, nil
}
