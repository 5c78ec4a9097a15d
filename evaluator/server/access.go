package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/flagops/flagops/evaluator"
)

// Error codes of authentication and authorization.
const (
	codeUnauthorized           = "UNAUTHORIZED"
	codeForbidden              = "FORBIDDEN"
	codeDeviceClassNotEligible = "DEVICE_CLASS_NOT_ELIGIBLE"
)

// routeAccess is what a route requires when authentication is on.
type routeAccess uint8

const (
	// accessDevice: a context token in the Authorization header; the
	// evaluation context comes from it.
	accessDevice routeAccess = iota
	// accessStream: accessDevice, and the token may instead be the
	// access_token query parameter (RFC 6750 section 2.3), which browsers'
	// EventSource needs.
	accessStream
	// accessAdmin: a token with scope flagops:admin; the context comes
	// from the query.
	accessAdmin
	// accessSync: a token with scope flagops:sync; the route has no
	// evaluation context.
	accessSync
)

// paramAccessToken is the query parameter carrying a token on stream routes.
const paramAccessToken = "access_token"

type tokenCtxKey struct{}

// withAuth guards a route. With Options.Auth it requires a token for the
// route's namespace (aud), with the admin scope on admin routes, and
// hands the verified token on in the request context (the Authorization
// header wins over access_token when both are sent); a device token whose
// deviceClass is eligible for no flag of the namespace gets 403. On every
// route, with or without Options.Auth, access_token is refused outside the
// stream routes and removed from the query of stream routes (whose
// responses then get Cache-Control: no-store).
func (s *server) withAuth(access routeAccess, prefixed bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queryTok, inQuery, err := accessTokenParam(r.URL.RawQuery)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, r.PathValue("key"), codeInvalidQuery, err.Error())
			return
		}
		if inQuery {
			if access != accessStream {
				s.writeError(w, http.StatusBadRequest, r.PathValue("key"), codeInvalidQuery,
					"query parameter access_token is accepted only by GET /v1/stream and GET /ofrep/v1/sse: send Authorization: Bearer <token>")
				return
			}
			// The URL holds a credential: no cache may keep the response.
			w = &noStoreWriter{ResponseWriter: w}
			r = withoutAccessToken(r)
		}
		if s.opts.Auth == nil {
			next.ServeHTTP(w, r)
			return
		}
		v, ok := s.authorize(w, r, access, prefixed, queryTok, inQuery)
		if !ok {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenCtxKey{}, v)))
	})
}

// authorize checks the request's token for the route and writes the error
// response when it fails. queryTok is the access_token, if inQuery.
func (s *server) authorize(w http.ResponseWriter, r *http.Request, access routeAccess, prefixed bool, queryTok string, inQuery bool) (*verifiedToken, bool) {
	// The header wins over access_token: a client may follow an advertised
	// stream URI holding an older token while it sends a fresh one in the
	// header.
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if inQuery && r.Header.Get("Authorization") == "" {
		raw, ok = queryTok, queryTok != ""
	}
	if !ok {
		writeUnauthorized(w, `Bearer`, "missing bearer token: send Authorization: Bearer <context token>")
		return nil, false
	}
	v, err := s.opts.Auth.verify(raw)
	if err != nil {
		writeUnauthorized(w, `Bearer error="invalid_token"`, fmt.Errorf("invalid context token: %w", err).Error())
		return nil, false
	}
	ns := s.opts.DefaultNamespace
	if prefixed {
		ns = r.PathValue("namespace")
	}
	if !v.forNamespace(ns) {
		writeUnauthorized(w, `Bearer error="invalid_token"`, "invalid context token: it is not for namespace "+
			strconv.Quote(ns)+" (its aud must contain "+strconv.Quote(AudiencePrefix+ns)+")")
		return nil, false
	}
	if access == accessAdmin && !v.admin {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+ScopeAdmin+`"`)
		s.writeError(w, http.StatusForbidden, r.PathValue("key"), codeForbidden,
			"this route needs an admin token (scope "+ScopeAdmin+"); a device token cannot use it")
		return nil, false
	}
	if access == accessSync && !v.sync {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+ScopeSync+`"`)
		s.writeError(w, http.StatusForbidden, "", codeForbidden,
			"this route needs a sync token (scope "+ScopeSync+"): it sends every override of the namespace")
		return nil, false
	}
	if (access == accessDevice || access == accessStream) && v.ctx.DeviceClass != "" {
		// Seed 000: chargers never get flag values or events.
		snap := s.store.Snapshot()
		if s.hasNamespace(snap, ns) && !snap.Namespace(ns).EligibleDeviceClass(v.ctx.DeviceClass) {
			s.writeError(w, http.StatusForbidden, r.PathValue("key"), codeDeviceClassNotEligible,
				"device class "+strconv.Quote(v.ctx.DeviceClass)+" is not eligible for any flag of namespace "+strconv.Quote(ns))
			return nil, false
		}
	}
	return v, true
}

// accessTokenParam returns the access_token query parameter, if present.
// A malformed query is left to the route to report.
func accessTokenParam(rawQuery string) (tok string, present bool, err error) {
	if !strings.Contains(rawQuery, paramAccessToken) {
		return "", false, nil
	}
	q, perr := url.ParseQuery(rawQuery)
	if perr != nil {
		return "", false, nil
	}
	vals, present := q[paramAccessToken]
	if len(vals) > 1 {
		return "", true, fmt.Errorf("query parameter %q is given %d times", paramAccessToken, len(vals))
	}
	if present {
		tok = vals[0]
	}
	return tok, present, nil
}

// withoutAccessToken returns a shallow copy of r whose query lacks
// access_token, so that routes never see (or log) the credential.
func withoutAccessToken(r *http.Request) *http.Request {
	q, _ := url.ParseQuery(r.URL.RawQuery)
	q.Del(paramAccessToken)
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = q.Encode()
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2
}

// noStoreWriter forces Cache-Control: no-store on a response.
type noStoreWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *noStoreWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Set("Cache-Control", "no-store")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noStoreWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushing).
func (w *noStoreWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the headers (with no-store) and the body written so far.
func (w *noStoreWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// bearerToken extracts the token of an Authorization header using the
// Bearer scheme (case-insensitive).
func bearerToken(header string) (string, bool) {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(scheme):])
	return tok, tok != ""
}

func writeUnauthorized(w http.ResponseWriter, challenge, details string) {
	w.Header().Set("WWW-Authenticate", challenge)
	writeErrorBody(w, http.StatusUnauthorized, "", codeUnauthorized, details)
}

// tokenOf returns the verified token of an authenticated request.
func tokenOf(r *http.Request) *verifiedToken {
	v, _ := r.Context().Value(tokenCtxKey{}).(*verifiedToken)
	return v
}

// requestToken returns the raw context token the request was authenticated
// with ("" when serving is open or on a route without a token).
func (s *server) requestToken(r *http.Request) string {
	if v := tokenOf(r); v != nil {
		return v.raw
	}
	return ""
}

// applyClaims replaces ctx, the context a request asked for, with the
// context of its token: every attribute comes from the token's ctx claim,
// except the client-settable free attributes the token does not set, which
// are kept from the request. Without a token (open serving) ctx is left as
// is.
func (s *server) applyClaims(r *http.Request, ctx *evaluator.Context) {
	if v := tokenOf(r); v != nil {
		*ctx = s.opts.Auth.merge(v, ctx)
	}
}
