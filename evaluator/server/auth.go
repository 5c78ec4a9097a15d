package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/evaluator"
)

// Error codes of authentication and authorization.
const (
	codeUnauthorized = "UNAUTHORIZED"
	codeForbidden    = "FORBIDDEN"
)

// contextClaims are the claims of a context token. The identity claims are
// strings; a claim of another type makes the token invalid.
type contextClaims struct {
	UserID      string `json:"userId,omitempty"`
	OrgID       string `json:"orgId,omitempty"`
	Role        string `json:"role,omitempty"`
	DeviceID    string `json:"deviceId,omitempty"`
	DeviceClass string `json:"deviceClass,omitempty"`
	jwt.RegisteredClaims
}

type claimsKey struct{}

// validMethods are the only signing algorithms accepted.
var validMethods = []string{jwt.SigningMethodHS256.Alg()}

// withToken requires a valid context token before calling next, and passes
// its claims on in the request context.
func (s *server) withToken(next http.Handler) http.Handler {
	parser := jwt.NewParser(jwt.WithValidMethods(validMethods))
	key := s.opts.TokenKey
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			writeUnauthorized(w, `Bearer`, "missing bearer token: send Authorization: Bearer <context token>")
			return
		}
		claims := new(contextClaims)
		if _, err := parser.ParseWithClaims(raw, claims, keyFunc); err != nil {
			writeUnauthorized(w, `Bearer error="invalid_token"`, fmt.Errorf("invalid context token: %w", err).Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
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

// tokenClaims returns the claims of the request's context token, or nil
// when context tokens are not required.
func (s *server) tokenClaims(r *http.Request) *contextClaims {
	if s.opts.TokenKey == nil {
		return nil
	}
	c, _ := r.Context().Value(claimsKey{}).(*contextClaims)
	return c
}

// applyClaims replaces the identity of ctx with the token's: userId,
// orgId, role, deviceId and deviceClass come from the claims (empty when
// a claim is absent), and targetingKey becomes the token's userId, so that
// nothing in the request selects another user's or device's overrides.
func (s *server) applyClaims(r *http.Request, ctx *evaluator.Context) {
	c := s.tokenClaims(r)
	if c == nil {
		return
	}
	ctx.UserID, ctx.TargetingKey = c.UserID, c.UserID
	ctx.OrgID, ctx.Role = c.OrgID, c.Role
	ctx.DeviceID, ctx.DeviceClass = c.DeviceID, c.DeviceClass
}
