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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
	"github.com/flagops/flagops/internal/localdir"
)

// serveOptions are the flags of `flagops serve`.
type serveOptions struct {
	dir              string
	bindAddr         string
	defaultNamespace string
	access           deviceAccess
	streams          streamLimits
}

func parseServeFlags(args []string, stdout, stderr io.Writer) (*serveOptions, error) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("flagops serve", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "Directory of FeatureFlag, UserFlagOverride and DeviceFlagOverride manifests (required).")
	fs.StringVar(&o.bindAddr, "evaluator-bind-address", "127.0.0.1:8080",
		"Address the evaluator's HTTP API (native, OFREP, streams, /healthz, /readyz) binds to. The default is reachable from this machine only.")
	fs.StringVar(&o.defaultNamespace, "default-namespace", "",
		"Namespace of manifests without metadata.namespace, and of the unprefixed routes. Empty means the one namespace found in the files, if there is exactly one, else default.")
	o.access.bind(fs)
	o.streams.bind(fs)
	if err := parseCommand(fs, "Usage: flagops serve --dir DIR [flags]\n\nServe flags from a directory of manifests, with no cluster: for local development and for apps' own tests.\nThe files are validated as the API server and webhooks would; they are reloaded on change, and a bad file keeps the last good state.\nWithout --context-token-keys-file serving is open, with no authentication: bind it to localhost unless that is what you want.\n\n", args, stdout, stderr); err != nil {
		return nil, err
	}
	if o.dir == "" {
		return nil, errors.New("--dir is required")
	}
	st, err := os.Stat(o.dir)
	if err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--dir: %s is not a directory", o.dir)
	}
	// serve --dir is for development: without keys it stays open.
	if err := o.access.load(false); err != nil {
		return nil, err
	}
	if err := o.streams.load(); err != nil {
		return nil, err
	}
	return o, nil
}

func runServe(args []string, stdout, stderr io.Writer) int {
	o, err := parseServeFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, "flagops serve: %v\n", err)
	}
	ln, err := net.Listen("tcp", o.bindAddr)
	if err != nil {
		return fail(stderr, 2, "flagops serve: --evaluator-bind-address: %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, o, ln, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
		return fail(stderr, 1, "flagops serve: %v\n", err)
	}
	return 0
}

// serve loads the directory into a store, watches it, ticks the store's clock and serves the
// evaluator on ln until ctx is done.
func serve(ctx context.Context, o *serveOptions, ln net.Listener, log *slog.Logger) error {
	store := evaluator.NewStore()
	loader, err := localdir.New(o.dir, store, localdir.Options{Namespace: o.defaultNamespace, Logger: log})
	if err != nil {
		return fmt.Errorf("failed to set up the loader for %s: %w", o.dir, err)
	}
	// The first load decides the default namespace. A bad file is reported and the server
	// starts anyway: the watcher applies the directory as soon as it is fixed.
	if res, err := loader.Load(); err != nil {
		log.Error("Not serving the directory until its errors are fixed", "dir", o.dir, "errors", err.Error())
	} else {
		log.Info("Loaded the directory", "dir", o.dir, "objects", len(res.Objects), "revision", res.Revision)
	}
	ns := o.defaultNamespace
	if ns == "" {
		ns = localdir.DefaultNamespace
		if nss := loader.Namespaces(); len(nss) == 1 {
			ns = nss[0]
		}
	}

	opts := server.Options{
		DefaultNamespace: ns, Logger: log,
		Auth: o.access.auth, CORSAllowedOrigins: o.access.origins,
	}
	o.streams.apply(&opts)
	srv := &http.Server{
		// /healthz (from server.New) answers while serving; /readyz once a state of the
		// directory was applied with no problem in it.
		Handler: withReadyz(server.New(store, opts), loader.Loaded),
		// Streams set a deadline per write; every other response must finish in time.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	// Requests, streams included, end when serving stops, after the listener closed.
	defer endRequestsOnShutdown(ctx, srv)()
	o.access.start(ctx, logr.FromSlogHandler(log.Handler()))
	errs := make(chan error, 2)
	go func() { errs <- loader.Watch(ctx) }()
	go store.RunClock(ctx)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("evaluator server: %w", err)
		}
	}()
	log.Info("Serving flags", "address", ln.Addr().String(), "defaultNamespace", ns, "dir", o.dir)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Shutdown closes the listener, then ends the requests; close what it could not drain.
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	return runErr
}
