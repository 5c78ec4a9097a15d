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

// Package machine describes the machine the hack/ measurements run on, from /proc.
package machine

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUModel returns the first CPU's model name, or "unknown".
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Describe returns the number of CPUs, the CPU model, the platform and the Go version.
func Describe() string {
	return fmt.Sprintf("nproc=%d, cpu=%s, %s/%s, %s", runtime.NumCPU(), CPUModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// RSS returns the resident set size (VmRSS) of the process pid, in bytes; pid 0 is this
// process.
func RSS(pid int) (int64, error) {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + p + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading VmRSS: %w", err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading VmRSS: %w", err)
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + p + "/status")
}

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on Linux.
const clockTick = 10 * time.Millisecond

// CPU returns the CPU time (user and system) the process pid has used.
func CPU(pid int) (time.Duration, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	// The fields after the command name (which may hold spaces) start with the state,
	// field 3; utime and stime are fields 14 and 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields", p, len(fields))
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// LoadAvg returns the 1, 5 and 15 minute load averages of /proc/loadavg, or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// RaiseFileLimit raises RLIMIT_NOFILE to its hard limit and checks that it holds need.
func RaiseFileLimit(need uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	if rl.Cur < need {
		return fmt.Errorf("RLIMIT_NOFILE is %d, too low for %d open files (ulimit -n)", rl.Cur, need)
	}
	return nil
}
