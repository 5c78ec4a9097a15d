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
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
	"github.com/flagops/flagops/test/testenv"
)

// The people of the cluster tests, with their static tokens (--token-auth-file): alice edits
// flags (group flag-editors, bound to flagops-admin and view in shop), bob reads them
// (flag-viewers, flagops-viewer and view), olga reads flags but not Events (flag-readers,
// flagops-viewer alone), mallory has no role. The built-in view role lets a person list
// Events, which the flag page's history reads; envtest runs no controller that aggregates
// its rules, so the tests bind system:aggregate-to-view, which holds them.
const (
	aliceToken   = "alice-token-0123456789"
	bobToken     = "bob-token-0123456789"
	olgaToken    = "olga-token-0123456789"
	malloryToken = "mallory-token-0123456789"
)

// cluster is the control plane of the console's cluster tests.
type cluster struct {
	admin    client.Client
	kube     kubernetes.Interface
	config   *rest.Config
	auditLog string
	// console is the console's own config: the token of the ServiceAccount flagops-console
	// bound to exactly the shipped RBAC of config/console.
	console *rest.Config
}

// startCluster starts envtest with the static tokens, an audit log of flagops requests, the
// user roles, the console's shipped ServiceAccount, ClusterRole and binding, and namespace
// shop with the fixture's objects.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	policy := filepath.Join(dir, "audit-policy.yaml")
	c := &cluster{auditLog: filepath.Join(dir, "audit.log")}
	write(t, tokens, aliceToken+",alice,uid-alice,\"flag-editors\"\n"+bobToken+",bob,uid-bob,\"flag-viewers\"\n"+
		olgaToken+",olga,uid-olga,\"flag-readers\"\n"+malloryToken+",mallory,uid-mallory\n")
	write(t, policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: flagops.dev\n- level: None\n")
	root := filepath.Join("..", "..")
	env := testenv.New(root)
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Set("token-auth-file", tokens).Set("audit-policy-file", policy).Set("audit-log-path", c.auditLog)
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	c.config = cfg
	scheme := flagadmin.NewScheme()
	if err := rbacv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := eventsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if c.admin, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"shop", "flagops-system"} {
		create(t, c.admin, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	shipped, err := testenv.ReadObjects(filepath.Join(root, "config", "rbac", "user_roles.yaml"),
		filepath.Join(root, "config", "console", "service_account.yaml"),
		filepath.Join(root, "config", "console", "role.yaml"),
		filepath.Join(root, "config", "console", "role_binding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range shipped {
		create(t, c.admin, o)
	}
	for name, b := range map[string]struct{ group, role string }{
		"flag-editors": {"flag-editors", "flagops-admin"}, "flag-editors-view": {"flag-editors", "system:aggregate-to-view"},
		"flag-viewers": {"flag-viewers", "flagops-viewer"}, "flag-viewers-view": {"flag-viewers", "system:aggregate-to-view"},
		"flag-readers": {"flag-readers", "flagops-viewer"},
	} {
		group, role := b.group, b.role
		create(t, c.admin, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}}})
	}
	for _, o := range testObjects() {
		o.SetResourceVersion("")
		o.SetCreationTimestamp(metav1.Time{})
		create(t, c.admin, o)
	}
	carol := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "carol-pilot"},
		Spec: v1.UserFlagOverrideSpec{UserID: "carol", FlagOverrideSpec: v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{{Key: "limit", Value: js(`30`)}}}}}
	create(t, c.admin, carol)
	c.console = c.tokenConfig(t, "flagops-system", "flagops-console", nil)
	// RBAC takes effect when the API server's informers see the bindings.
	g := NewWithT(t)
	g.Eventually(func() bool {
		return c.allowed(ctx, "alice", []string{"flag-editors"}, "create") && c.allowed(ctx, "bob", []string{"flag-viewers"}, "list") &&
			c.allowedOn(ctx, "bob", []string{"flag-viewers"}, &authorizationv1.ResourceAttributes{Namespace: "shop", Verb: "list", Resource: "events"}) &&
			c.allowed(ctx, "olga", []string{"flag-readers"}, "list")
	}).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeTrue())
	return c
}

// allowed asks the API server whether user (in groups) may verb userflagoverrides in shop.
func (c *cluster) allowed(ctx context.Context, user string, groups []string, verb string) bool {
	return c.allowedOn(ctx, user, groups, &authorizationv1.ResourceAttributes{Namespace: "shop", Verb: verb, Group: "flagops.dev", Resource: "userflagoverrides"})
}

// allowedOn asks the API server whether user (in groups) may do attrs.
func (c *cluster) allowedOn(ctx context.Context, user string, groups []string, attrs *authorizationv1.ResourceAttributes) bool {
	res, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups, ResourceAttributes: attrs,
	}}, metav1.CreateOptions{})
	return err == nil && res.Status.Allowed
}

// tokenConfig returns a config of the API server with a TokenRequest token of ServiceAccount
// ns/name for audiences (the API server's when nil).
func (c *cluster) tokenConfig(t *testing.T, ns, name string, audiences []string) *rest.Config {
	t.Helper()
	tr, err := c.kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), o); err != nil {
		t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

// recordEvents creates Events about beta.dashboard in shop as the manager records them
// (events.k8s.io/v1; no manager runs in these tests): a schedule step, erin's override
// created and the flag's rollout changed by alice through the console, and a change by
// kubectl edit whose actor could not be verified. The audited changes' notes are
// auditevent.Format's, which the manager uses.
func (c *cluster) recordEvents(t *testing.T) {
	t.Helper()
	now := time.Now()
	console := func(route string) *auditevent.Request {
		return &auditevent.Request{Route: route, SourceIP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}
	}
	alice := auditevent.Actor{Username: "alice", Verified: true}
	overrideCreated := auditevent.Format(auditevent.Note{SubjectKind: auditevent.SubjectUser, Subject: "erin", Generation: 1, Actor: alice,
		Request: console("POST /ns/{ns}/users/{id}"), After: map[string]json.RawMessage{"beta.dashboard": json.RawMessage(`{"value":true}`)},
		RecordID: strings.Repeat("1", 32)})
	flagUpdated := auditevent.Format(auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "beta.dashboard", Generation: 2, Actor: alice,
		Request: console("POST /ns/{ns}/flags/{name}/rollout"),
		Before:  map[string]json.RawMessage{"rollout": json.RawMessage(`{"percentage":10}`)}, After: map[string]json.RawMessage{"rollout": json.RawMessage(`{"percentage":25}`)},
		RecordID: strings.Repeat("2", 32)})
	for i, e := range []struct {
		kind, name, typ, reason, action, note string
		ago                                   time.Duration
	}{
		{"FeatureFlag", "beta.dashboard", corev1.EventTypeNormal, v1.EventReasonScheduleApplied, "Schedule",
			"the schedule step at " + now.Add(-40*time.Minute).UTC().Format(time.RFC3339) + " took effect: enabled true", 40 * time.Minute},
		{"UserFlagOverride", "user-erin", corev1.EventTypeNormal, v1.EventReasonOverrideCreated, "user_override.created", overrideCreated, 30 * time.Minute},
		{"FeatureFlag", "beta.dashboard", corev1.EventTypeNormal, v1.EventReasonFlagUpdated, "flag.updated", flagUpdated, 20 * time.Minute},
		{"FeatureFlag", "beta.dashboard", corev1.EventTypeWarning, v1.EventReasonUnverifiedChange, "Audit",
			`flag.updated at generation 3 has no valid actor stamp (the annotation gave no name); recorded with actor.verified false and field manager "kubectl-edit" as a hint`, 10 * time.Minute},
	} {
		create(t, c.admin, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("ev-%d", i)},
			Regarding:  corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: e.kind, Namespace: "shop", Name: e.name},
			EventTime:  metav1.NewMicroTime(now.Add(-e.ago)), Type: e.typ, Reason: e.reason, Note: e.note, Action: e.action,
			ReportingController: "flagops-manager", ReportingInstance: "flagops-manager-0",
		})
	}
}

// serve starts a console over HTTPS with the console's own config and opts (impersonating
// unless opts say otherwise).
func (c *cluster) serve(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	if opts.Identity == "" {
		opts.Identity = IdentityImpersonate
	}
	opts.SessionKey = make([]byte, KeySize)
	if _, err := rand.Read(opts.SessionKey); err != nil {
		t.Fatal(err)
	}
	opts.Logger = testr.New(t)
	s, err := New(c.console, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// browser is a person's browser: its own cookies, redirects not followed.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

// userAgent is the browsers' User-Agent.
const userAgent = "console-envtest/1.0"

func newBrowser(t *testing.T, ts *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *ts.Client() // a copy: every browser has its own cookies
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, base: ts.URL, c: &c}
}

// do sends a request and returns the status, the Location and the body.
func (b *browser) do(method, path string, form url.Values, header map[string]string) (int, string, string) {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("User-Agent", userAgent)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var sb strings.Builder
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		sb.WriteString(sc.Text())
		sb.WriteByte('\n')
	}
	return res.StatusCode, res.Header.Get("Location"), sb.String()
}

func (b *browser) get(path string) (int, string) {
	status, _, body := b.do("GET", path, nil, nil)
	return status, body
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	if status, _, body := b.do("POST", "/signin", url.Values{"token": {token}}, nil); status != http.StatusSeeOther {
		b.t.Fatalf("sign in: status %d: %s", status, errorOf(body))
	}
}

var (
	errorRE   = regexp.MustCompile(`id="error">([^<]*)<`)
	versionRE = regexp.MustCompile(`name="version" value="([^"]*)"`)
)

// errorOf returns the error message a page shows.
func errorOf(body string) string {
	if m := errorRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// versionOf returns the version a subject page's forms carry.
func versionIn(t *testing.T, body string) string {
	t.Helper()
	m := versionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no version field")
	}
	return m[1]
}

// rvOf returns the resourceVersion the flag list's forms carry for flag name.
func rvOf(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`action="/ns/shop/flags/` + regexp.QuoteMeta(name) + `/enabled"[^>]*>\s*<input type="hidden" name="rv" value="(\d+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the flag list has no switch form for %s", name)
	}
	return m[1]
}

// auditEvent is the part of a Kubernetes audit event the tests read.
type auditEvent struct {
	Verb         string                    `json:"verb"`
	Stage        string                    `json:"stage"`
	User         struct{ Username string } `json:"user"`
	Impersonated *struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra"`
	} `json:"impersonatedUser"`
	ObjectRef struct {
		Resource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus struct{ Code int } `json:"responseStatus"`
}

// auditEvents returns the API server's audit events of verb on resource/name that completed.
func (c *cluster) auditEvents(t *testing.T, verb, resource, name string) []auditEvent {
	t.Helper()
	b, err := os.ReadFile(c.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEvent
	for _, line := range strings.Split(string(b), "\n") {
		var e auditEvent
		if json.Unmarshal([]byte(line), &e) != nil || e.Stage != "ResponseComplete" {
			continue
		}
		if e.Verb == verb && e.ObjectRef.Resource == resource && e.ObjectRef.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func TestConsoleOnCluster(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	// The static token file's authenticator is audience-agnostic: its tokens pass a
	// TokenReview only for the API server's own audiences, so this console asks for none.
	ts := c.serve(t, Options{})
	consoleUser := "system:serviceaccount:flagops-system:flagops-console"
	getOverride := func(name string) (*v1.UserFlagOverride, error) {
		o := &v1.UserFlagOverride{}
		return o, c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, o)
	}

	t.Run("admin sets an override with an expiry and a reason", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		status, body := alice.get("/ns/shop/users/dave?edit=limit")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, errorOf(body))
		}
		contains(t, body, `id="signed-in-as">alice<`, `id="value-input"`, `id="source-limit" title="default">default<`)
		form := url.Values{"key": {"limit"}, "value.limit": {"abc"}, "version": {versionIn(t, body)}, "expires": {"7d"}, "reason": {"pilot customer"}}
		status, _, body = alice.do("POST", "/ns/shop/users/dave", form, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(errorOf(body), "limit=abc: number flag needs a JSON number value") {
			t.Fatalf("a value of the wrong type: status %d, error %q", status, errorOf(body))
		}
		form.Set("value.limit", "42")
		status, loc, body := alice.do("POST", "/ns/shop/users/dave", form, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("save: status %d, error %q", status, errorOf(body))
		}
		_, body = alice.get(loc)
		contains(t, body, `id="notice">Saved limit.`, `id="value-limit">42<`, `id="source-limit" title="user-override:shop/user-dave">user override<`,
			`id="reason-limit">pilot customer<`, `id="clear-limit"`)
		o, err := getOverride("user-dave")
		if err != nil {
			t.Fatal(err)
		}
		if o.Spec.UserID != "dave" || len(o.Spec.Flags) != 1 || string(o.Spec.Flags[0].Value.Raw) != "42" || o.Spec.Reason != "pilot customer" ||
			o.Spec.ExpiresAt == nil || time.Until(o.Spec.ExpiresAt.Time) < 6*24*time.Hour {
			t.Errorf("stored %+v", o.Spec)
		}
		if len(o.ManagedFields) == 0 || o.ManagedFields[0].Manager != FieldManager {
			t.Errorf("managed fields %+v, want the manager %s", o.ManagedFields, FieldManager)
		}
		// The API server saw the console's ServiceAccount impersonate alice, with the request.
		var events []auditEvent
		NewWithT(t).Eventually(func() int {
			events = c.auditEvents(t, "create", "userflagoverrides", "user-dave")
			return len(events)
		}).WithTimeout(30 * time.Second).Should(Equal(1))
		e := events[0]
		if e.User.Username != consoleUser || e.Impersonated == nil || e.Impersonated.Username != "alice" {
			t.Fatalf("audit event of the create: user %q, impersonated %+v", e.User.Username, e.Impersonated)
		}
		for k, want := range map[string]string{audit.ExtraRoute: "POST /ns/{ns}/users/{id}", audit.ExtraSourceIP: "127.0.0.1", audit.ExtraUserAgent: userAgent} {
			if got := e.Impersonated.Extra[k]; len(got) != 1 || got[0] != want {
				t.Errorf("impersonated extra %s = %q, want %q", k, got, want)
			}
		}
	})

	t.Run("a save after someone else's change is refused and shows the new state", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/users/dave?edit=limit")
		stale := versionIn(t, body)
		o, err := getOverride("user-dave")
		if err != nil {
			t.Fatal(err)
		}
		o.Spec.Flags[0].Value = js(`43`)
		if err := c.admin.Update(ctx, o); err != nil {
			t.Fatal(err)
		}
		status, _, body := alice.do("POST", "/ns/shop/users/dave", url.Values{"key": {"limit"}, "value.limit": {"44"}, "version": {stale}}, nil)
		if status != http.StatusConflict || !strings.Contains(errorOf(body), "The overrides of user &#34;dave&#34; in shop changed meanwhile") {
			t.Fatalf("status %d, error %q", status, errorOf(body))
		}
		contains(t, body, `id="value-limit">43<`)
		if o, _ := getOverride("user-dave"); string(o.Spec.Flags[0].Value.Raw) != "43" {
			t.Errorf("the refused save wrote %s", o.Spec.Flags[0].Value.Raw)
		}
	})

	t.Run("viewer sees no controls and the API server refuses a crafted write", func(t *testing.T) {
		bob := newBrowser(t, ts)
		bob.signIn(bobToken)
		status, body := bob.get("/ns/shop/users/dave?edit=limit")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, errorOf(body))
		}
		contains(t, body, `id="value-limit">43<`, "read-only: you may not change its overrides")
		lacks(t, body, `id="edit-`, `id="clear-`, `id="editor"`)
		_, flags := bob.get("/ns/shop/flags")
		lacks(t, flags, `id="switch-`, `id="rollout-set-`)
		for name, header := range map[string]map[string]string{
			"crafted POST": nil,
			// A client-sent impersonation header is never forwarded: the API server sees bob.
			"with a forged Impersonate-User": {"Impersonate-User": "alice", "Impersonate-Group": "flag-editors"},
		} {
			status, _, body := bob.do("POST", "/ns/shop/users/erin", url.Values{"key": {"limit"}, "value.limit": {"1"}, "version": {""}}, header)
			if status != http.StatusForbidden || !strings.Contains(errorOf(body), `User &#34;bob&#34; cannot create resource &#34;userflagoverrides&#34;`) {
				t.Errorf("%s: status %d, error %q", name, status, errorOf(body))
			}
		}
		status, _, body = bob.do("POST", "/ns/shop/flags/beta.dashboard/enabled", url.Values{"enabled": {"false"}, "rv": {"1"}}, nil)
		if status != http.StatusForbidden || !strings.Contains(errorOf(body), `cannot patch resource &#34;featureflags&#34;`) {
			t.Errorf("switch as a viewer: status %d, error %q", status, errorOf(body))
		}
		if _, err := getOverride("user-erin"); !apierrors.IsNotFound(err) {
			t.Errorf("user-erin: %v, want NotFound", err)
		}
	})

	t.Run("the flag's history, read as the user", func(t *testing.T) {
		c.recordEvents(t)
		bob := newBrowser(t, ts)
		bob.signIn(bobToken)
		status, body := bob.get("/ns/shop/flags/beta.dashboard")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, errorOf(body))
		}
		contains(t, body, `id="history-0" class="warning"`, `id="history-actor-0">kubectl-edit (unverified)<`, `has no valid actor stamp`,
			`id="history-actor-1">alice<`, `<code>rollout</code>: <code class="before">{&#34;percentage&#34;:10}</code> → <code class="after">{&#34;percentage&#34;:25}</code>`,
			`id="history-details-1">via POST /ns/{ns}/flags/{name}/rollout from 192.0.2.7 using Mozilla/5.0 (X11; Linux x86_64)<`,
			`id="history-actor-2">alice<`, `<code>beta.dashboard</code>: <code class="before">—</code> → <code class="after">{&#34;value&#34;:true}</code>`,
			`id="history-actor-3">flagops-manager<`, `ScheduleApplied`)
		lacks(t, body, `id="history-4"`)
		// The console may list Events as anyone, but olga may not: her page says so.
		olga := newBrowser(t, ts)
		olga.signIn(olgaToken)
		status, body = olga.get("/ns/shop/flags/beta.dashboard")
		if status != http.StatusOK {
			t.Fatalf("olga: status %d: %s", status, errorOf(body))
		}
		contains(t, body, `id="history-error">The history cannot be shown: Error from server (Forbidden): events is forbidden: User &#34;olga&#34; cannot list resource &#34;events&#34;`, `id="spec"`)
	})

	t.Run("no role: forbidden", func(t *testing.T) {
		mallory := newBrowser(t, ts)
		mallory.signIn(malloryToken)
		status, body := mallory.get("/ns/shop/flags")
		if status != http.StatusForbidden || !strings.Contains(errorOf(body), `User &#34;mallory&#34; cannot list resource &#34;featureflags&#34;`) {
			t.Errorf("status %d, error %q", status, errorOf(body))
		}
	})

	t.Run("master switch and rollout", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/flags")
		rv := rvOf(t, body, "beta.dashboard")
		status, loc, body := alice.do("POST", "/ns/shop/flags/beta.dashboard/enabled", url.Values{"enabled": {"false"}, "rv": {rv}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("switch: status %d, error %q", status, errorOf(body))
		}
		_, body = alice.get(loc)
		contains(t, body, `id="notice">beta.dashboard: master switch turned off.<`, `id="state-beta.dashboard">off<`)
		// The page's old resourceVersion is now stale: the API server refuses the patch.
		status, _, body = alice.do("POST", "/ns/shop/flags/beta.dashboard/rollout", url.Values{"percentage": {"50"}, "rv": {rv}}, nil)
		if status != http.StatusConflict || !strings.Contains(errorOf(body), "FeatureFlag shop/beta.dashboard changed meanwhile") {
			t.Fatalf("stale rollout: status %d, error %q", status, errorOf(body))
		}
		status, _, body = alice.do("POST", "/ns/shop/flags/beta.dashboard/rollout", url.Values{"percentage": {"50"}, "rv": {rvOf(t, body, "beta.dashboard")}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("rollout: status %d, error %q", status, errorOf(body))
		}
		f := &v1.FeatureFlag{}
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "beta.dashboard"}, f); err != nil {
			t.Fatal(err)
		}
		if f.Spec.Enabled || f.Spec.Rollout == nil || f.Spec.Rollout.Percentage != 50 {
			t.Errorf("flag spec %+v", f.Spec)
		}
		status, _, body = alice.do("POST", "/ns/shop/flags/managed/enabled", url.Values{"enabled": {"true"}, "rv": {"1"}}, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(errorOf(body), "managed by Argo CD") {
			t.Errorf("GitOps flag: status %d, error %q", status, errorOf(body))
		}
	})

	t.Run("GitOps-managed overrides are read-only", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/users/gina?edit=limit")
		contains(t, body, `id="readonly">UserFlagOverride shop/user-gina is managed by Argo CD (label `+gitops.ArgoCDInstanceLabel+`)`, `id="gitops-limit"`)
		lacks(t, body, `id="editor"`, `id="clear-limit"`)
		gina, err := getOverride("user-gina")
		if err != nil {
			t.Fatal(err)
		}
		// The page has no form: a crafted one, with the object's current version.
		status, _, body := alice.do("POST", "/ns/shop/users/gina/clear", url.Values{"key": {"limit"}, "version": {"user-gina=" + gina.ResourceVersion}}, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(errorOf(body), "managed by Argo CD") {
			t.Errorf("clear: status %d, error %q", status, errorOf(body))
		}
		if o, err := getOverride("user-gina"); err != nil || len(o.Spec.Flags) != 1 {
			t.Errorf("user-gina after the refused clear: %v %+v", err, o.Spec)
		}
	})

	t.Run("clear override and device override", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/users/carol")
		contains(t, body, `id="source-limit" title="user-override:shop/carol-pilot">user override<`)
		status, loc, body := alice.do("POST", "/ns/shop/users/carol/clear", url.Values{"key": {"limit"}, "version": {versionIn(t, body)}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("clear: status %d, error %q", status, errorOf(body))
		}
		_, body = alice.get(loc)
		contains(t, body, `id="notice">Cleared the override of limit.`, `id="source-limit" title="default">default<`)
		if _, err := getOverride("carol-pilot"); !apierrors.IsNotFound(err) {
			t.Errorf("carol-pilot after clearing its only entry: %v, want NotFound", err)
		}
		_, body = alice.get("/ns/shop/devices/tab-1?class=tablet&edit=beta.dashboard")
		status, _, body = alice.do("POST", "/ns/shop/devices/tab-1?class=tablet",
			url.Values{"key": {"beta.dashboard"}, "value.beta.dashboard": {"false", "true"}, "version": {versionIn(t, body)}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("device save: status %d, error %q", status, errorOf(body))
		}
		d := &v1.DeviceFlagOverride{}
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "device-tab-1"}, d); err != nil || d.Spec.DeviceID != "tab-1" || string(d.Spec.Flags[0].Value.Raw) != "true" {
			t.Errorf("device-tab-1: %v %+v", err, d.Spec)
		}
	})

	t.Run("bulk disable on the Overrides page", func(t *testing.T) {
		alice := newBrowser(t, ts)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/overrides?q=dave")
		m := regexp.MustCompile(`name="select" value="(user/user-dave/\d+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no selection for user-dave on the page")
		}
		bob := newBrowser(t, ts)
		bob.signIn(bobToken)
		status, _, body := bob.do("POST", "/ns/shop/overrides/enabled", url.Values{"enabled": {"false"}, "select": {m[1]}}, nil)
		if status != http.StatusForbidden || !strings.Contains(errorOf(body), `User &#34;bob&#34; cannot patch resource &#34;userflagoverrides&#34;`) {
			t.Errorf("bulk disable as a viewer: status %d, error %q", status, errorOf(body))
		}
		status, loc, body := alice.do("POST", "/ns/shop/overrides/enabled", url.Values{"enabled": {"false"}, "select": {m[1]}, "q": {"dave"}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("bulk disable: status %d, error %q", status, errorOf(body))
		}
		_, body = alice.get(loc)
		contains(t, body, `id="notice">Disabled 1 override objects.<`, `id="state-user-user-dave-limit">disabled<`)
		if o, err := getOverride("user-dave"); err != nil || o.Spec.Enabled == nil || *o.Spec.Enabled {
			t.Errorf("user-dave after the bulk disable: %v %+v", err, o.Spec)
		}
	})

	t.Run("passthrough: the user's own token", func(t *testing.T) {
		pass := c.serve(t, Options{Identity: IdentityPassthrough})
		alice := newBrowser(t, pass)
		alice.signIn(aliceToken)
		_, body := alice.get("/ns/shop/users/hank?edit=limit")
		contains(t, body, `id="editor"`)
		status, _, body := alice.do("POST", "/ns/shop/users/hank", url.Values{"key": {"limit"}, "value.limit": {"9"}, "version": {versionIn(t, body)}}, nil)
		if status != http.StatusSeeOther {
			t.Fatalf("save: status %d, error %q", status, errorOf(body))
		}
		var events []auditEvent
		NewWithT(t).Eventually(func() int {
			events = c.auditEvents(t, "create", "userflagoverrides", "user-hank")
			return len(events)
		}).WithTimeout(30 * time.Second).Should(Equal(1))
		if events[0].User.Username != "alice" || events[0].Impersonated != nil {
			t.Errorf("audit event: user %q, impersonated %+v; want alice herself", events[0].User.Username, events[0].Impersonated)
		}
		bob := newBrowser(t, pass)
		bob.signIn(bobToken)
		_, body = bob.get("/ns/shop/users/hank")
		contains(t, body, `id="value-limit">9<`)
		lacks(t, body, `id="edit-`, `id="clear-`)
	})

	t.Run("the console's own rights end at flagops objects", func(t *testing.T) {
		// alice may do anything in the cluster, but the console may impersonate her only for
		// flagops objects, and nobody in system:masters.
		create(t, c.admin, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-cluster-admin"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}})
		defer func() {
			_ = c.admin.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-cluster-admin"}})
		}()
		as := func(user string, groups ...string) kubernetes.Interface {
			cfg := rest.CopyConfig(c.console)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
			k, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		g := NewWithT(t)
		g.Eventually(func() bool {
			return c.allowedOn(ctx, "alice", nil, &authorizationv1.ResourceAttributes{Namespace: "shop", Verb: "list", Resource: "secrets"})
		}).WithTimeout(time.Minute).Should(BeTrue())
		if _, err := as("alice").CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the console lists secrets as alice: %v, want Forbidden", err)
		}
		if _, err := as("root", "system:masters").CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the console acts as system:masters: %v, want Forbidden", err)
		}
	})

	t.Run("service account tokens for the console's audience", func(t *testing.T) {
		create(t, c.admin, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ci-bot"}})
		create(t, c.admin, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ci-bot"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flagops-admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "ci-bot", Namespace: "shop"}}})
		audienced := c.serve(t, Options{TokenAudience: "flagops-console", ReviewTTL: time.Second})
		// The static token of alice fails a review for the console's audience.
		alice := newBrowser(t, audienced)
		if status, _, body := alice.do("POST", "/signin", url.Values{"token": {aliceToken}}, nil); status != http.StatusUnauthorized {
			t.Errorf("static token for the console's audience: status %d, error %q", status, errorOf(body))
		}
		// A token for the API server does not sign in to a console with its own audience.
		if status, _, _ := alice.do("POST", "/signin", url.Values{"token": {c.tokenConfig(t, "shop", "ci-bot", nil).BearerToken}}, nil); status != http.StatusUnauthorized {
			t.Errorf("a token for the API server's audience: status %d", status)
		}
		bot := newBrowser(t, audienced)
		bot.signIn(c.tokenConfig(t, "shop", "ci-bot", []string{"flagops-console"}).BearerToken)
		g := NewWithT(t)
		g.Eventually(func() int {
			status, _, _ := bot.do("POST", "/ns/shop/users/frank", url.Values{"key": {"limit"}, "value.limit": {"5"}, "version": {""}}, nil)
			return status
		}).WithTimeout(time.Minute).Should(Equal(http.StatusSeeOther))
		g.Eventually(func() []auditEvent { return c.auditEvents(t, "create", "userflagoverrides", "user-frank") }).WithTimeout(30 * time.Second).
			Should(ContainElement(WithTransform(func(e auditEvent) string {
				if e.Impersonated == nil || e.ResponseStatus.Code != http.StatusCreated {
					return ""
				}
				return e.User.Username + " as " + e.Impersonated.Username
			}, Equal(consoleUser+" as system:serviceaccount:shop:ci-bot"))))
		// Deleting the ServiceAccount revokes its token: within the review TTL the console
		// sends the browser back to sign in.
		if err := c.admin.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ci-bot"}}); err != nil {
			t.Fatal(err)
		}
		g.Eventually(func() string {
			_, loc, _ := bot.do("GET", "/ns/shop/flags", nil, nil)
			return loc
		}).WithTimeout(time.Minute).Should(HavePrefix("/signin?expired=1"))
	})
}
