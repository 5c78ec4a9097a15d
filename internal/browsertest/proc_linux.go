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

package browsertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procAttr starts the browser in a process group of its own, so that killGroup can kill
// whatever it started, and kills it when the thread that started it ends (as chromedp's
// default does).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group pgid and waits, up to timeout, until no process of it
// runs. Zombies do not count: they write nothing, and the processes that Chromium leaves
// behind are reparented to PID 1, which may take seconds to reap them.
func killGroup(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) || err == nil && !groupRuns(pgid) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to kill the browser's process group %d: %w", pgid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the browser's process group %d still runs %v after it was killed", pgid, timeout)
		}
		// A killed process ends shortly: look again.
		time.Sleep(10 * time.Millisecond)
	}
}

// groupRuns reports whether a process of the group pgid runs (is not a zombie), from
// /proc/PID/stat: "PID (COMM) STATE PPID PGRP ...", where COMM may hold spaces and ")".
func groupRuns(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended since the listing
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || string(f[2]) != strconv.Itoa(pgid) {
			continue
		}
		if s := string(f[0]); s != "Z" && s != "X" {
			return true
		}
	}
	return false
}
