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
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

// Timeouts of the evaluator's HTTP server. Event streams set a deadline per write
// (--stream-write-timeout) instead.
const (
	evaluatorReadHeaderTimeout = 5 * time.Second
	evaluatorReadTimeout       = 30 * time.Second
	evaluatorWriteTimeout      = 30 * time.Second
	evaluatorIdleTimeout       = 120 * time.Second
	evaluatorShutdownTimeout   = 10 * time.Second
)

// withReadyz serves GET /readyz from ready (200 once it reports true, 503 before) and every
// other request from h.
func withReadyz(h http.Handler, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"syncing"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("/", h)
	return mux
}

// newEvaluatorHTTPServer returns the http.Server of the evaluator: server.New over store,
// with the context tokens and CORS origins of access, the stream limits of limits, /readyz
// gated on syncer, metrics in controller-runtime's registry and the timeouts above.
func newEvaluatorHTTPServer(addr, defaultNamespace string, store *evaluator.Store, syncer *controllers.Syncer, access *deviceAccess, limits *streamLimits, log logr.Logger) *http.Server {
	opts := server.Options{
		DefaultNamespace:   defaultNamespace,
		Logger:             slog.New(logr.ToSlogHandler(log)),
		Metrics:            controllers.StreamMetrics{},
		Auth:               access.auth,
		CORSAllowedOrigins: access.origins,
	}
	limits.apply(&opts)
	h := server.New(store, opts)
	return &http.Server{
		Addr:              addr,
		Handler:           withReadyz(h, syncer.Synced),
		ReadHeaderTimeout: evaluatorReadHeaderTimeout,
		ReadTimeout:       evaluatorReadTimeout,
		WriteTimeout:      evaluatorWriteTimeout,
		IdleTimeout:       evaluatorIdleTimeout,
	}
}

// evaluatorRunnable serves an http.Server on every replica (no leader election) until the
// manager stops, then shuts it down gracefully.
type evaluatorRunnable struct {
	srv *http.Server
	// listen opens the listener; nil means net.Listen("tcp", srv.Addr).
	listen func() (net.Listener, error)
	log    logr.Logger
	// access, when set, is started with the server: it warns when serving
	// is open and reloads the keys file.
	access *deviceAccess
}

func (r *evaluatorRunnable) NeedLeaderElection() bool { return false }

func (r *evaluatorRunnable) Start(ctx context.Context) error {
	listen := r.listen
	if listen == nil {
		listen = func() (net.Listener, error) { return net.Listen("tcp", r.srv.Addr) }
	}
	ln, err := listen()
	if err != nil {
		return fmt.Errorf("the evaluator server cannot listen on %q: %w", r.srv.Addr, err)
	}
	if r.access != nil {
		r.access.start(ctx, r.log)
	}
	defer endRequestsOnShutdown(ctx, r.srv)()
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(ln) }()
	r.log.Info("Serving the evaluator", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("the evaluator server stopped: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), evaluatorShutdownTimeout)
	defer cancel()
	if err := r.srv.Shutdown(shutdownCtx); err != nil {
		// The streams ended when Shutdown closed the listener; close what remains.
		_ = r.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("the evaluator server stopped: %w", err)
	}
	return nil
}

// endRequestsOnShutdown makes the requests of srv (its streams included) end once Shutdown
// has closed srv's listeners, not as soon as ctx ends: a client that reconnects at once
// when its stream ends must find the listener closed, not this server on its way out,
// which would accept it and end it again. The returned function ends them too.
func endRequestsOnShutdown(ctx context.Context, srv *http.Server) context.CancelFunc {
	reqCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	srv.RegisterOnShutdown(cancel)
	return cancel
}
