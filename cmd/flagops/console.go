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
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flagops/flagops/internal/console"
)

// consoleOptions are the flags of `flagops console`.
type consoleOptions struct {
	listen           string
	tlsCertFile      string
	tlsKeyFile       string
	insecureHTTP     bool
	identity         string
	tokenAudience    string
	sessionKeyFile   string
	sessionMaxAge    time.Duration
	reviewTTL        time.Duration
	signInFromHeader bool
	defaultNamespace string
	zap              zap.Options
	console          console.Options
	generatedKey     bool
	tokenAudienceSet bool
}

// defaultConsoleAudience is the TokenReview audience of impersonate mode: tokens made for the
// console (kubectl create token NAME --audience flagops-console) are no use to the API server
// directly if they leak.
const defaultConsoleAudience = "flagops-console"

const consoleUsage = `Usage: flagops console --tls-cert-file FILE --tls-key-file FILE [flags]

Serve the web console: the flag list, and every flag's value for a user or a device, with
their overrides. The console never writes as itself: a user signs in with a bearer token,
which the console checks with TokenReview and exchanges for a session cookie; every read
and write is made as that user (impersonated, or with the token itself in passthrough mode),
so Kubernetes RBAC decides what each user sees and may change. See docs/console.md.

`

func parseConsoleFlags(args []string, stdout, stderr io.Writer) (*consoleOptions, error) {
	o := &consoleOptions{}
	fs := flag.NewFlagSet("flagops console", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8444", "Address the console's HTTPS listener binds to. The default is reachable from this machine only.")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "", "PEM certificate (chain) the console serves; reloaded when the file changes. Required unless --insecure-http.")
	fs.StringVar(&o.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file. Required unless --insecure-http.")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "Serve plain HTTP on a loopback --listen address, for local use and tests only: the session cookie is not Secure.")
	fs.StringVar(&o.identity, "identity", string(console.IdentityImpersonate),
		"How the console acts as the signed-in user: impersonate (its ServiceAccount impersonates the reviewed user, groups and extra) or passthrough (it sends the user's token).")
	fs.StringVar(&o.tokenAudience, "token-audience", defaultConsoleAudience,
		`Audience TokenReview checks sign-in tokens for (make them with kubectl create token NAME --audience flagops-console). Set it to "" for tokens of the static token file or other audience-agnostic authenticators, which fail a review for any audience but the API server's; passthrough needs "" (its default).`)
	fs.StringVar(&o.sessionKeyFile, "session-key-file", "",
		"File holding the session key: 32 random bytes, base64-encoded (openssl rand -base64 32). Every replica needs the same key. Without it a key is generated at start: sessions end when the console restarts and work on one replica only.")
	fs.DurationVar(&o.sessionMaxAge, "session-max-age", console.DefaultSessionMaxAge, "Longest a session lasts; the token's own expiry may end it sooner.")
	fs.DurationVar(&o.reviewTTL, "token-review-ttl", console.DefaultReviewTTL,
		"How long a TokenReview answer is reused (by the token's SHA-256), so how long a revoked token may still work; 1s to 5m.")
	fs.BoolVar(&o.signInFromHeader, "signin-with-authorization-header", false,
		"Let the sign-in page use the bearer token an authenticating proxy puts in the Authorization header (OIDC proxies). The header is read on POST /signin only.")
	fs.StringVar(&o.defaultNamespace, "default-namespace", "", "Namespace the start page opens. Empty shows the namespaces where the user may list flags.")
	o.zap.BindFlags(fs)
	if err := parseCommand(fs, consoleUsage, args, stdout, stderr); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.tokenAudienceSet = o.tokenAudienceSet || f.Name == "token-audience" })
	return o, o.validate()
}

// validate checks the flags and fills console.Options; errors name the flag.
func (o *consoleOptions) validate() error {
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT: %w", o.listen, err)
	}
	switch {
	case o.insecureHTTP && (o.tlsCertFile != "" || o.tlsKeyFile != ""):
		return errors.New("--insecure-http and --tls-cert-file/--tls-key-file are exclusive")
	case o.insecureHTTP && !isLoopback(host):
		return fmt.Errorf("--insecure-http: --listen %q is not a loopback address; plain HTTP would expose session cookies", o.listen)
	case !o.insecureHTTP && (o.tlsCertFile == "" || o.tlsKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file are required: the console serves HTTPS (--insecure-http is for local use)")
	}
	id := console.Identity(o.identity)
	switch id {
	case console.IdentityImpersonate:
	case console.IdentityPassthrough:
		if !o.tokenAudienceSet {
			o.tokenAudience = ""
		} else if o.tokenAudience != "" {
			return fmt.Errorf("--token-audience %q: --identity=passthrough sends the token to the API server, which accepts only its own audiences; leave it empty", o.tokenAudience)
		}
	default:
		return fmt.Errorf("--identity %q: want impersonate or passthrough", o.identity)
	}
	if o.sessionMaxAge < time.Minute {
		return fmt.Errorf("--session-max-age %s: want at least 1m", o.sessionMaxAge)
	}
	if o.reviewTTL < time.Second || o.reviewTTL > 5*time.Minute {
		return fmt.Errorf("--token-review-ttl %s: want 1s to 5m", o.reviewTTL)
	}
	key, err := o.sessionKey()
	if err != nil {
		return err
	}
	o.console = console.Options{
		Identity: id, TokenAudience: o.tokenAudience, SessionKey: key, SessionMaxAge: o.sessionMaxAge, ReviewTTL: o.reviewTTL,
		SignInWithAuthorizationHeader: o.signInFromHeader, InsecureHTTP: o.insecureHTTP, DefaultNamespace: strings.TrimSpace(o.defaultNamespace),
	}
	return nil
}

// sessionKey reads --session-key-file, or generates a key without it.
func (o *consoleOptions) sessionKey() ([]byte, error) {
	if o.sessionKeyFile == "" {
		o.generatedKey = true
		key := make([]byte, console.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("failed to generate a session key: %w", err)
		}
		return key, nil
	}
	b, err := os.ReadFile(o.sessionKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--session-key-file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != console.KeySize {
		return nil, fmt.Errorf("--session-key-file %s: want %d random bytes, base64-encoded (openssl rand -base64 32)", o.sessionKeyFile, console.KeySize)
	}
	return key, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runConsole(args []string, stdout, stderr io.Writer) int {
	o, err := parseConsoleFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, 2, "flagops console: %v\n", err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap), zap.WriteTo(stderr)))
	log := ctrl.Log.WithName("console")
	if o.generatedKey {
		log.Info("WARNING: no --session-key-file: using a generated session key; sessions end when the console restarts and work on this replica only")
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Unable to load the Kubernetes client configuration")
		return 1
	}
	o.console.Logger = log
	h, err := console.New(cfg, o.console)
	if err != nil {
		log.Error(err, "Unable to set up the console")
		return 1
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fail(stderr, 2, "flagops console: --listen: %v\n", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := serveConsole(ctx, o, h, ln, log); err != nil {
		log.Error(err, "The console stopped with an error")
		return 1
	}
	return 0
}

// serveConsole serves h on ln until ctx is done: HTTPS with the certificate files (reloaded
// when they change), or plain HTTP with --insecure-http.
func serveConsole(ctx context.Context, o *consoleOptions, h http.Handler, ln net.Listener, log logr.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errs := make(chan error, 2)
	if !o.insecureHTTP {
		w, err := certwatcher.New(o.tlsCertFile, o.tlsKeyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
		}
		go func() {
			if err := w.Start(ctx); err != nil {
				errs <- fmt.Errorf("certificate watcher: %w", err)
			}
		}()
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: w.GetCertificate, NextProtos: []string{"h2", "http/1.1"}})
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("console server: %w", err)
		}
	}()
	log.Info("Serving the console", "address", ln.Addr().String(), "identity", o.identity, "tokenAudience", o.tokenAudience, "https", !o.insecureHTTP)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	return runErr
}
