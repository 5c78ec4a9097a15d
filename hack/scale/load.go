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
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// servingLoad is what the clients of evaluate sent while a cold evaluator settled.
type servingLoad struct {
	Clients  int   `json:"clients"`
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
}

// evaluate runs clients that call the evaluator at base back to back until ctx ends, as
// OpenFeature clients would: an OFREP single evaluation of a random flag for a random user
// with overrides, and one request in ten a bulk evaluation of every flag for one.
func evaluate(ctx context.Context, base string, clients, users, flags int) *servingLoad {
	var requests, failed atomic.Int64
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	for c := range clients {
		rng := rand.New(rand.NewPCG(uint64(c), 16))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				i := rng.IntN(users)
				url := base + "/ofrep/v1/evaluate/flags/" + flagKey(flags, rng.IntN(flags))
				if n%10 == 9 {
					url = base + "/ofrep/v1/evaluate/flags"
				}
				body := fmt.Sprintf(`{"context":{"targetingKey":"user-%06d"}}`, i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	hc.CloseIdleConnections()
	return &servingLoad{Clients: clients, Requests: requests.Load(), Failed: failed.Load()}
}
