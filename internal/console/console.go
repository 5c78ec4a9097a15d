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

package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/flagops/flagops/internal/audit"
)

// Identity is how the console acts as the signed-in user.
type Identity string

const (
	// IdentityImpersonate: the console's own credentials impersonate the user, groups, UID
	// and extra that TokenReview returned, and add the request's route, source IP and user
	// agent as extras (audit.ExtraRoute, ExtraSourceIP, ExtraUserAgent).
	IdentityImpersonate Identity = "impersonate"
	// IdentityPassthrough: the user's own token is sent to the API server, for clusters where
	// the console may not impersonate. The token must be one the API server accepts (no
	// console audience), and the request's route, IP and user agent are not carried.
	IdentityPassthrough Identity = "passthrough"
)

// FieldManager is the field manager of every write the console makes.
const FieldManager = "flagops-console"

// Defaults of Options.
const (
	DefaultSessionMaxAge = 8 * time.Hour
	DefaultReviewTTL     = 30 * time.Second
)

// Options configure the console.
type Options struct {
	// Identity is how the console acts as the signed-in user.
	Identity Identity
	// TokenAudience is the audience TokenReview checks the token for. Empty means the API
	// server's own audiences: needed for tokens of audience-agnostic authenticators, such
	// as the static token file, which fail a review for any other audience.
	TokenAudience string
	// SessionKey seals the session cookies (AES-256-GCM, KeySize bytes). Every replica
	// needs the same key.
	SessionKey []byte
	// SessionMaxAge is the longest a session lasts; the token's own expiry may end it
	// sooner. Zero means DefaultSessionMaxAge.
	SessionMaxAge time.Duration
	// ReviewTTL is how long a TokenReview's answer is reused, so how long a revoked token
	// may still be accepted. Zero means DefaultReviewTTL.
	ReviewTTL time.Duration
	// SignInWithAuthorizationHeader lets the sign-in form use the bearer token that an
	// authenticating proxy puts in the Authorization header of the sign-in request. The
	// header is never used on another route.
	SignInWithAuthorizationHeader bool
	// InsecureHTTP is for tests and local use over plain HTTP: the session cookie is not
	// Secure and has no __Host- prefix.
	InsecureHTTP bool
	// DefaultNamespace is where the start page leads; empty shows a namespace picker.
	DefaultNamespace string
	// Logger logs what cannot be shown to the user.
	Logger logr.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Server is the console: an http.Handler.
type Server struct {
	opts    Options
	backend backend
	sealer  *sealer
	pages   *pages
	handler http.Handler
}

// New returns the console that acts for its users on the API server of cfg, whose own
// credentials review tokens and access (and impersonate, with IdentityImpersonate).
func New(cfg *rest.Config, opts Options) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	b, err := newKubeBackend(cfg, &opts)
	if err != nil {
		return nil, err
	}
	return newServer(opts, b)
}

func (o *Options) defaults() error {
	switch o.Identity {
	case IdentityImpersonate:
	case IdentityPassthrough:
		if o.TokenAudience != "" {
			return fmt.Errorf("token audience %q: passthrough sends the token to the API server, which accepts only its own audiences; leave the audience empty", o.TokenAudience)
		}
	default:
		return fmt.Errorf("identity %q: want %q or %q", o.Identity, IdentityImpersonate, IdentityPassthrough)
	}
	if o.SessionMaxAge <= 0 {
		o.SessionMaxAge = DefaultSessionMaxAge
	}
	if o.ReviewTTL <= 0 {
		o.ReviewTTL = DefaultReviewTTL
	}
	return nil
}

func newServer(opts Options, b backend) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	k, err := newSealer(opts.SessionKey)
	if err != nil {
		return nil, err
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, backend: b, sealer: k, pages: p}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes returns the console's handler: the security headers on every response, then the
// refusal of bearer tokens, then CSRF protection (no bypass), then the routes.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("POST /signout", s.signOut)
	mux.HandleFunc("GET /{$}", s.authed(s.home))
	mux.HandleFunc("GET /ns/{ns}/flags", s.authed(s.flagsPage))
	mux.HandleFunc("GET /ns/{ns}/flags/{name}", s.authed(s.flagPage))
	mux.HandleFunc("POST /ns/{ns}/flags/{name}/enabled", s.authed(s.setEnabled))
	mux.HandleFunc("POST /ns/{ns}/flags/{name}/rollout", s.authed(s.setRollout))
	mux.HandleFunc("GET /ns/{ns}/overrides", s.authed(s.overridesPage))
	mux.HandleFunc("POST /ns/{ns}/overrides/enabled", s.authed(s.bulkSwitch))
	for _, kind := range []subjectKind{userKind, deviceKind} {
		mux.HandleFunc("GET /ns/{ns}/"+kind.path, s.authed(s.subjectFinder(kind)))
		mux.HandleFunc("GET /ns/{ns}/"+kind.path+"/{id}", s.authed(s.subjectPage(kind)))
		mux.HandleFunc("POST /ns/{ns}/"+kind.path+"/{id}", s.authed(s.subjectSave(kind)))
		mux.HandleFunc("POST /ns/{ns}/"+kind.path+"/{id}/clear", s.authed(s.subjectClear(kind)))
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, nil, http.StatusForbidden, errors.New("cross-origin request refused: forms of the console may only be sent from the console's own pages"))
	}))
	return securityHeaders(!s.opts.InsecureHTTP, s.rejectBearer(csrf.Handler(mux)))
}

// contentSecurityPolicy allows the console's own scripts, styles and forms only: no inline
// script or style, no framing, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers of every response: the CSP, no sniffing, no referrer, no
// framing, no caching of pages that show a user's data, and HSTS over HTTPS.
func securityHeaders(https bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if https {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// rejectBearer refuses a request that carries an Authorization header: the console's routes
// accept only the session cookie (seed 000: "bearer tokens are rejected; you must be signed
// in with a cookie session"). With SignInWithAuthorizationHeader, the proxy's header is read
// on POST /signin and ignored elsewhere, since such a proxy sends it with every request.
func (s *Server) rejectBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			if !s.opts.SignInWithAuthorizationHeader {
				s.renderError(w, r, nil, http.StatusUnauthorized,
					errors.New("bearer tokens are not accepted here: sign in at /signin, which exchanges a token for a cookie session"))
				return
			}
			if r.Method != http.MethodPost || r.URL.Path != "/signin" {
				r = r.Clone(r.Context())
				r.Header.Del("Authorization")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authed runs h with the request's session: the cookie opened and its token reviewed.
// Without a valid session the browser goes to the sign-in page (and the cookie is removed).
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			// Forms are small: 1 MiB is more than 32 entries of the largest values.
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				s.renderError(w, r, nil, http.StatusBadRequest, fmt.Errorf("the form cannot be read: %w", err))
				return
			}
		}
		sealed, err := s.readSession(r)
		if err == nil {
			var u *User
			if u, err = s.backend.review(r.Context(), sealed.Token); err == nil {
				h(w, r, &session{token: sealed.Token, user: u})
				return
			}
		}
		target := "/signin"
		if !errors.Is(err, errNoSession) {
			s.clearSession(w)
			if !errors.Is(err, errUnauthenticated) {
				s.opts.Logger.Error(err, "Token review failed")
			}
			target += "?expired=1"
		}
		if r.Method == http.MethodGet && r.URL.Path != "/" {
			sep := "?"
			if strings.Contains(target, "?") {
				sep = "&"
			}
			target += sep + "next=" + urlQueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

// requestExtras are the extras that tell the admission webhook which request of the console
// made a write: the route pattern, the browser's IP address as the console saw it, and its
// user agent.
func requestExtras(r *http.Request) map[string]string {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	return map[string]string{
		audit.ExtraRoute:     r.Pattern,
		audit.ExtraSourceIP:  ip,
		audit.ExtraUserAgent: r.UserAgent(),
	}
}
