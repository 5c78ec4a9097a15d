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
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// signInData is the sign-in page's.
type signInData struct {
	// FromHeader offers to sign in with the proxy's Authorization header.
	FromHeader bool
	Next       string
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	p := &page{Title: "Sign in", Data: signInData{FromHeader: s.opts.SignInWithAuthorizationHeader, Next: safeNext(r.URL.Query().Get("next"))}}
	if r.URL.Query().Get("expired") != "" {
		p.Error = "Your session ended: the token expired or is no longer accepted. Sign in again."
	}
	s.render(w, http.StatusOK, "signin", p)
}

// signIn exchanges a bearer token, pasted in the form or (opt-in) in the proxy's
// Authorization header, for a session cookie, once TokenReview accepts it.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	if h := r.Header.Get("Authorization"); token == "" && s.opts.SignInWithAuthorizationHeader && h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			s.signInFailed(w, r, http.StatusUnauthorized, "the Authorization header holds no bearer token")
			return
		}
		token = strings.TrimSpace(t)
	}
	if token == "" {
		s.signInFailed(w, r, http.StatusBadRequest, "token: paste a bearer token, e.g. from kubectl create token")
		return
	}
	if _, err := s.backend.review(r.Context(), token); err != nil {
		if !errors.Is(err, errUnauthenticated) {
			s.opts.Logger.Error(err, "Token review failed")
			s.signInFailed(w, r, http.StatusBadGateway, "token: it could not be checked with the API server; try again")
			return
		}
		s.signInFailed(w, r, http.StatusUnauthorized, "token: "+err.Error())
		return
	}
	if err := s.setSession(w, token, s.opts.now()); err != nil {
		s.signInFailed(w, r, http.StatusBadRequest, "token: "+err.Error())
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signInFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, status, "signin", &page{Title: "Sign in", Error: msg,
		Data: signInData{FromHeader: s.opts.SignInWithAuthorizationHeader, Next: safeNext(r.PostFormValue("next"))}})
}

// signOut removes the session cookie. The token itself stays valid until it expires.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	s.clearSession(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext returns next when it is a path of the console, else "": the sign-in page never
// sends the browser elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	return next
}

// homeData is the start page's: the namespaces where the user can list flags.
type homeData struct {
	Namespaces []string
}

// home leads to the default namespace's flags, or to the one asked for with ?ns=, or shows
// the namespaces where the user may list flags across the cluster.
func (s *Server) home(w http.ResponseWriter, r *http.Request, sess *session) {
	ns := strings.TrimSpace(r.URL.Query().Get("ns"))
	if ns == "" && s.opts.DefaultNamespace != "" && r.URL.Query().Get("pick") == "" {
		ns = s.opts.DefaultNamespace
	}
	if ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			s.renderError(w, r, sess, http.StatusBadRequest, errors.New("namespace: "+strings.Join(errs, "; ")))
			return
		}
		http.Redirect(w, r, "/ns/"+ns+"/flags", http.StatusSeeOther)
		return
	}
	data := homeData{}
	if c, err := s.backend.client(sess, requestExtras(r)); err == nil {
		var list v1.FeatureFlagList
		// Only a user who may list flags in every namespace gets the list; others type one.
		if err := c.List(r.Context(), &list); err == nil {
			for _, f := range list.Items {
				if !slices.Contains(data.Namespaces, f.Namespace) {
					data.Namespaces = append(data.Namespaces, f.Namespace)
				}
			}
			slices.Sort(data.Namespaces)
		}
	}
	s.render(w, http.StatusOK, "home", &page{Title: "Namespaces", User: sess.user, Data: data})
}

// namespaceOf returns the request's namespace, or an error naming it when it is not a
// namespace name.
func namespaceOf(r *http.Request) (string, error) {
	ns := r.PathValue("ns")
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", errors.New("namespace " + ns + ": " + strings.Join(errs, "; "))
	}
	return ns, nil
}
