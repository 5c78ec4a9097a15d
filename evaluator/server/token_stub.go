package server

import "net/http"

// requestToken returns the raw context token of the request, "" when none.
//
// TEMPORARY stub: the token check (auth.go) provides the real one, which
// also reads the access_token query parameter of stream routes. Delete this
// file when it lands.
func (s *server) requestToken(r *http.Request) string {
	if tok, ok := bearerToken(r.Header.Get("Authorization")); ok {
		return tok
	}
	return ""
}
