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
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// receiver is the audit HTTP sink's receiver: it keeps the record (the CloudEvent's data)
// of every event delivered to it, repeats included, and answers 503 while failing is set.
type receiver struct {
	srv     *http.Server
	url     string
	failing atomic.Bool

	mu       sync.Mutex
	records  [][]byte
	refused  int
	requests int
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/audit"}
	r.srv = &http.Server{Handler: r}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.failing.Load() {
		r.refused++
		http.Error(w, "the soak's receiver is failing on purpose", http.StatusServiceUnavailable)
		return
	}
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	type event struct {
		Data json.RawMessage `json:"data"`
	}
	var events []event
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		err = json.Unmarshal(body, &events)
	} else {
		var e event
		err = json.Unmarshal(body, &e)
		events = []event{e}
	}
	if err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range events {
		r.records = append(r.records, bytes.Clone(e.Data))
	}
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the records received so far.
func (r *receiver) snapshot() (records [][]byte, refused, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.records...), r.refused, r.requests
}
