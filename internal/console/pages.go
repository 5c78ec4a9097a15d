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
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// htmxConfig configures htmx through its meta tag: no inline indicator style (the CSP allows
// none), no eval, no script tags in swapped content, no page snapshots in localStorage, and
// error responses (403, 409, 422) swapped in like others, since they are whole pages that
// say what went wrong.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"refreshOnHistoryMiss":true,` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}`

// assets are the URLs of the static files, with a hash of their content so that a browser
// may cache them for good.
type assets struct {
	CSS, HTMX string
}

// pages are the parsed templates, one set per page, and the static assets.
type pages struct {
	tmpl   map[string]*template.Template
	assets assets
}

func newPages() (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("failed to list the templates: %w", err)
	}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t, err := template.New(base).Funcs(template.FuncMap{"controls": controlsOf}).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", name)
		if err != nil {
			return nil, fmt.Errorf("failed to parse template %s: %w", base, err)
		}
		p.tmpl[strings.TrimSuffix(base, ".html")] = t
	}
	for _, a := range []struct {
		file string
		url  *string
	}{{"console.css", &p.assets.CSS}, {"htmx.min.js", &p.assets.HTMX}} {
		b, err := staticFS.ReadFile("static/" + a.file)
		if err != nil {
			return nil, fmt.Errorf("failed to read static/%s: %w", a.file, err)
		}
		sum := sha256.Sum256(b)
		*a.url = "/static/" + a.file + "?h=" + hex.EncodeToString(sum[:6])
	}
	return p, nil
}

// staticHandler serves the embedded static files. Their URLs carry a hash of their content,
// so they may be cached for good.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree has the directory
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || path.Ext(r.URL.Path) == ".txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}

// controls is what the flag-controls template gets: the row, and what its forms carry.
type controls struct {
	Namespace, Query, Return string
	Row                      flagRow
}

func controlsOf(ns, q, ret string, row flagRow) controls {
	return controls{Namespace: ns, Query: q, Return: ret, Row: row}
}

// page is what every template gets.
type page struct {
	Title      string
	User       *User
	Namespace  string
	Nav        string
	Error      string
	Notice     string
	Assets     assets
	HTMXConfig string
	Data       any
}

// render writes page name with status.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) {
	p.Assets, p.HTMXConfig = s.pages.assets, htmxConfig
	var buf bytes.Buffer
	if err := s.pages.tmpl[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.opts.Logger.Error(err, "Failed to render a page", "page", name)
		http.Error(w, "failed to render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows an error page with status.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, sess *session, status int, err error) {
	p := &page{Title: http.StatusText(status), Error: err.Error(), Namespace: r.PathValue("ns")}
	if sess != nil {
		p.User = sess.user
	}
	s.render(w, status, "error", p)
}

// urlQueryEscape escapes s for a query parameter.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }
