//go:build e2e

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

// Command client is the evaluator client that the end-to-end suite runs in a pod (an image
// FROM scratch holding only this static binary). Its arguments are triples URL TOKEN BODY:
// for each it POSTs BODY as JSON to URL with the bearer TOKEN and prints one line, the
// status code, a space and the response body on one line. It exits 1 on a transport error.
// With CLIENT_THEN_WAIT=1 it then waits for SIGTERM, so that it can run as the application
// container of a Deployment.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || len(args)%3 != 0 {
		fmt.Fprintln(os.Stderr, "usage: client URL TOKEN BODY [URL TOKEN BODY]...")
		os.Exit(2)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < len(args); i += 3 {
		req, err := http.NewRequest(http.MethodPost, args[i], bytes.NewBufferString(args[i+2]))
		if err != nil {
			fmt.Fprintf(os.Stderr, "request %d: %v\n", i/3, err)
			os.Exit(1)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+args[i+1])
		resp, err := c.Do(req)
		if err != nil {
			fmt.Fprintf(os.Stderr, "request %d: %v\n", i/3, err)
			os.Exit(1)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "request %d: %v\n", i/3, err)
			os.Exit(1)
		}
		fmt.Printf("%d %s\n", resp.StatusCode, bytes.ReplaceAll(body, []byte("\n"), nil))
	}
	if os.Getenv("CLIENT_THEN_WAIT") == "1" {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
	}
}
