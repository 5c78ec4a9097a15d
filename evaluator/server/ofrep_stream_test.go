package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/flagops/flagops/evaluator"
)

// postBulk posts an OFREP bulk evaluation and returns the response and its
// decoded advertised stream URI.
func postBulk(t *testing.T, srv *httptest.Server, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, resp.Body)
	var d struct {
		EventStreams []struct {
			Type     string `json:"type"`
			Endpoint struct {
				RequestURI string `json:"requestUri"`
			} `json:"endpoint"`
		} `json:"eventStreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST %s: status %d, %v", path, resp.StatusCode, err)
	}
	if len(d.EventStreams) != 1 || d.EventStreams[0].Type != "sse" {
		t.Fatalf("eventStreams = %+v, want one sse stream", d.EventStreams)
	}
	return resp, d.EventStreams[0].Endpoint.RequestURI
}

// TestOFREPAdvertisedStreamCarriesIdentity: a client that opens the stream
// URI of a bulk response exactly as given (as the OFREP web provider does
// with EventSource) hears about changes to its own overrides and to values
// that depend on any attribute of its context, and about nothing else.
func TestOFREPAdvertisedStreamCarriesIdentity(t *testing.T) {
	srv, store := newStreamServer(t, Options{}, nil)
	_, uri := postBulk(t, srv, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1","plan":"pro","deviceId":"d1","deviceClass":"phone"}}`)
	if !strings.HasPrefix(uri, "/ofrep/v1/sse?") {
		t.Fatalf("requestUri = %q, want the stream route with a query", uri)
	}
	c := open(t, srv, uri)
	c.quiet(t) // nothing changed since the bulk response

	refetch := func(t *testing.T) {
		t.Helper()
		if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) {
			t.Fatalf("frame = %+v, want a refetch event", ev)
		}
		c.quiet(t)
	}
	t.Run("another user's override", func(t *testing.T) {
		apply(t, store, userOv("u2", "u2-theme", "theme", `"neon"`))
		c.quiet(t)
	})
	t.Run("own user override", func(t *testing.T) {
		apply(t, store, userOv("u1", "u1-banner", "banner", `"hi"`))
		refetch(t)
	})
	t.Run("own device override", func(t *testing.T) {
		apply(t, store, evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectDevice, SubjectID: "d1", Namespace: "shop", Name: "d1-limits",
			CreatedAt: testNow, Enabled: true,
			Entries: []evaluator.OverrideEntry{{Key: "limits", Value: json.RawMessage(`{"maxItems":1}`)}},
		}))
		refetch(t)
	})
	t.Run("a value that depends on a free attribute", func(t *testing.T) {
		apply(t, store, evaluator.UpsertFlag("shop", "theme", evaluator.FlagSpec{
			Type: evaluator.TypeString, Enabled: true, Value: json.RawMessage(`"dark"`),
			Rules: []evaluator.Rule{{Name: "pro", Match: []evaluator.Condition{
				{Attribute: "plan", Operator: evaluator.OpIn, Values: []string{"pro"}},
			}, Value: json.RawMessage(`"ultra"`)}},
		}))
		refetch(t)
	})

	t.Run("namespaced", func(t *testing.T) {
		_, uri := postBulk(t, srv, "/namespaces/other/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`)
		if !strings.HasPrefix(uri, "/namespaces/other/ofrep/v1/sse?") {
			t.Fatalf("requestUri = %q", uri)
		}
		open(t, srv, uri).quiet(t)
	})
}

// TestOFREPAdvertisedStreamCarriesToken: with context tokens, the stream
// URI carries the request's token as access_token (RFC 6750, section 2.3),
// since EventSource cannot send headers, and the response is not stored. A
// client that opens that URI exactly as given, with no Authorization
// header, is authenticated by it and hears about its own user's override
// changes, and about no one else's.
func TestOFREPAdvertisedStreamCarriesToken(t *testing.T) {
	srv, store := newStreamServer(t, Options{Auth: newAuth(t, AuthOptions{ClientSettable: []string{"plan"}})}, nil)
	tok := edToken(t, claims("shop", map[string]any{"userId": "u1"}))
	resp, uri := postBulk(t, srv, "/ofrep/v1/evaluate/flags", `{"context":{"plan":"pro"}}`, bearer(tok)...)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("access_token") != tok {
		t.Errorf("access_token = %q, want the request's token", q.Get("access_token"))
	}
	if ctx := q.Get("context"); !strings.Contains(ctx, `"plan":"pro"`) || !strings.Contains(ctx, `"userId":"u1"`) {
		t.Errorf("context = %q, want the effective context", ctx)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store for a body holding a token", cc)
	}

	c := open(t, srv, uri)
	c.quiet(t) // nothing changed since the bulk response
	apply(t, store, userOv("u2", "u2-banner", "banner", `"other"`))
	c.quiet(t)
	apply(t, store, userOv("u1", "u1-banner", "banner", `"hi"`))
	if ev := c.next(t); !strings.Contains(ev.data, `"refetchEvaluation"`) {
		t.Fatalf("frame = %+v, want a refetch event for the token's own user override", ev)
	}
}

// TestBulkETagIgnoresOtherNamespaces: the bulk ETag changes exactly when
// the evaluated values of the request's context change.
func TestBulkETagIgnoresOtherNamespaces(t *testing.T) {
	store, now := newTestStore(t)
	srv := serveStore(t, store, Options{})
	const body = `{"context":{"userId":"bob"}}`
	etag := func() string {
		resp, _ := postBulk(t, srv, "/ofrep/v1/evaluate/flags", body)
		return resp.Header.Get("ETag")
	}
	tests := []struct {
		name    string
		write   func()
		changed bool
	}{
		{"write to another namespace", func() { apply(t, store, evaluator.UpsertFlag("other", "greeting", stringFlag(`"hey"`, true))) }, false},
		{"another user's override", func() { apply(t, store, userOv("carol", "carol-theme", "theme", `"neon"`)) }, false},
		{"no-op tick", func() { store.Tick(*now) }, false},
		{"own user override", func() {
			apply(t, store, userOv("bob", "bob-theme", "theme", `"neon"`))
		}, true},
		{"flag rewritten with the same value", func() {
			apply(t, store, evaluator.UpsertFlag("shop", "limits", evaluator.FlagSpec{
				Type: evaluator.TypeObject, Enabled: true, Value: json.RawMessage(`{"maxItems":50}`),
			}))
		}, false},
		{"this context's value", func() { apply(t, store, bannerOn()) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := etag()
			tc.write()
			after := etag()
			if (after != before) != tc.changed {
				t.Errorf("ETag %s -> %s, want changed=%v", before, after, tc.changed)
			}
		})
	}
}
