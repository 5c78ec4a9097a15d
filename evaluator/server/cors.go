package server

import (
	"net/http"
	"strconv"
)

// CORS settings of preflight answers.
const (
	corsAllowMethods  = "GET, POST, OPTIONS"
	corsAllowHeaders  = "Content-Type, Authorization, If-None-Match, Last-Event-ID"
	corsExposeHeaders = "ETag"
	// DefaultCORSMaxAge is how long browsers may cache a preflight answer.
	DefaultCORSMaxAge = 600 // seconds
)

// cors answers preflight requests and marks the responses to allowed
// origins readable by browsers.
type cors struct {
	next    http.Handler
	any     bool
	origins map[string]struct{}
	maxAge  string
}

func newCORS(next http.Handler, allowed []string) http.Handler {
	c := &cors{next: next, origins: make(map[string]struct{}, len(allowed)), maxAge: strconv.Itoa(DefaultCORSMaxAge)}
	for _, o := range allowed {
		if o == "*" {
			c.any = true
		}
		c.origins[o] = struct{}{}
	}
	return c
}

func (c *cors) allowOrigin(origin string) (string, bool) {
	if c.any {
		return "*", true
	}
	_, ok := c.origins[origin]
	return origin, ok
}

func (c *cors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		c.next.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allow, ok := c.allowOrigin(origin)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		// A preflight request: answered here, never by the routes.
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		if ok {
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", c.maxAge)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if ok {
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	c.next.ServeHTTP(w, r)
}
