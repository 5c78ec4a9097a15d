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

package kubectl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/test/testenv"
)

// cluster is the envtest control plane of the command tests, with a kubeconfig per user.
type cluster struct {
	admin       client.Client
	kubeconfigs map[string]string
}

const (
	viewerUser = "viewer-vic"
	groupUser  = "grace"
	viewGroup  = "flag-readers"
)

// startCluster starts envtest with the CRDs and the user roles (config/rbac/user_roles.yaml),
// the namespace shop holding the fixture's objects, viewer-vic bound only to the built-in
// view role in shop, the group flag-readers bound to view in shop, and kubeconfigs for
// admin (system:masters), viewer-vic and nobody (no rights).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
	}
	root := filepath.Join("..", "..")
	env := testenv.New(root)
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	c := &cluster{kubeconfigs: map[string]string{}}
	dir := t.TempDir()
	for name, groups := range map[string][]string{"admin": {"system:masters"}, viewerUser: nil, "nobody": nil} {
		u, err := env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := u.KubeConfig()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".kubeconfig")
		if err := os.WriteFile(path, kc, 0o600); err != nil {
			t.Fatal(err)
		}
		c.kubeconfigs[name] = path
		if name == "admin" {
			scheme := newScheme()
			if err := rbacv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			if err := eventsv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			if c.admin, err = client.New(u.Config(), client.Options{Scheme: scheme}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	roles, err := testenv.ReadObjects(filepath.Join(root, "config", "rbac", "user_roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := c.admin.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	aggregateView(t, c.admin)
	for _, ns := range []string{"shop", "billing"} {
		if err := c.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []rbacv1.RoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "viewer-vic-view"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewerUser}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "flag-readers-view"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: viewGroup}}},
	} {
		if err := c.admin.Create(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	objs := fixture()
	for i := range objs.Flags {
		f := objs.Flags[i].DeepCopy()
		if f.Name == "limits.max-items" {
			continue // the API server's schema refuses its value; the fake lister covers it
		}
		status := f.Status
		f.ObjectMeta = metav1.ObjectMeta{Namespace: f.Namespace, Name: f.Name}
		f.Status = v1.FeatureFlagStatus{}
		if err := c.admin.Create(ctx, f); err != nil {
			t.Fatalf("create FeatureFlag %s: %v", f.Name, err)
		}
		if f.Name == "search-v3-copy" || f.Name == "theme" {
			// Statuses as the manager writes them, of the object's generation.
			f.Status = status
			f.Status.ObservedGeneration = f.Generation
			f.Status.Conditions[0].ObservedGeneration = f.Generation
			if err := c.admin.Status().Update(ctx, f); err != nil {
				t.Fatalf("update the status of FeatureFlag %s: %v", f.Name, err)
			}
		}
	}
	// Backwards, so that alice-old is created first: pilot-alice, created in the same second
	// or later, loses the conflict on beta.dashboard whatever the clock does.
	for i := len(objs.Users) - 1; i >= 0; i-- {
		o := objs.Users[i].DeepCopy()
		o.ObjectMeta = metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name}
		if err := c.admin.Create(ctx, o); err != nil {
			t.Fatalf("create UserFlagOverride %s: %v", o.Name, err)
		}
	}
	for i := range objs.Devices {
		o := objs.Devices[i].DeepCopy()
		o.ObjectMeta = metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name}
		if err := c.admin.Create(ctx, o); err != nil {
			t.Fatalf("create DeviceFlagOverride %s: %v", o.Name, err)
		}
	}
	return c
}

// aggregateView does the job of kube-controller-manager's ClusterRole aggregation
// controller, which envtest does not run: it sets the rules of the built-in view role to
// those of every ClusterRole its aggregation rule selects (flagops-viewer among them).
func aggregateView(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	view := &rbacv1.ClusterRole{}
	if err := c.Get(ctx, client.ObjectKey{Name: "view"}, view); err != nil {
		t.Fatal(err)
	}
	if view.AggregationRule == nil {
		t.Fatal("the built-in view role has no aggregation rule")
	}
	var rules []rbacv1.PolicyRule
	var all rbacv1.ClusterRoleList
	if err := c.List(ctx, &all); err != nil {
		t.Fatal(err)
	}
	selected := map[string]bool{}
	for _, sel := range view.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all.Items {
			if r.Name != "view" && !selected[r.Name] && s.Matches(labels.Set(r.Labels)) {
				selected[r.Name] = true
				rules = append(rules, r.Rules...)
			}
		}
	}
	if !selected["flagops-viewer"] {
		t.Fatalf("view does not aggregate flagops-viewer; it selects %v", selected)
	}
	view.Rules = rules
	if err := c.Update(ctx, view); err != nil {
		t.Fatal(err)
	}
}

// runAs runs the plugin in-process with the kubeconfig of user and the fixture's clock.
func (c *cluster) runAs(user string, args ...string) (stdout, stderr string, code int) {
	return c.runWrapped(user, nil, args...)
}

// runWrapped is runAs with the writer wrapped by wrap (nil: not wrapped), so that a test can
// make a change of its own just before the plugin's write.
func (c *cluster) runWrapped(user string, wrap func(Writer) Writer, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	g := &globals{
		configFlags: newConfigFlags(),
		IOStreams:   genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		version:     "test",
		now:         func() time.Time { return fixtureNow },
		newLister:   newClientLister,
		newWriter: func(getter genericclioptions.RESTClientGetter) (Writer, error) {
			w, err := newClientWriter(getter)
			if err != nil || wrap == nil {
				return w, err
			}
			return wrap(w), nil
		},
		newEvents: newClientEvents,
	}
	args = append([]string{"--kubeconfig", c.kubeconfigs[user]}, args...)
	code = execute(newRootCommand(g, "kubectl flagops"), args, &errOut)
	return out.String(), errOut.String(), code
}

func TestCommandsOnCluster(t *testing.T) {
	c := startCluster(t)

	t.Run("viewer", func(t *testing.T) {
		tests := []struct {
			name string
			user string
			args []string
			// want are lines (or parts of lines) that stdout must contain.
			want []string
		}{
			{"get as admin", "admin", []string{"get", "-n", "shop"}, []string{
				"KEY                TYPE      STATE      ROLLOUT   USERS   DEVICES   READY   MESSAGE",
				"beta.dashboard     Boolean   enabled    25%       1       1         -       no Ready condition",
				"theme              String    enabled    -         1       1         True    serving generation 1",
				"search.v3          Boolean   disabled   -         0       0         False   the key \"search.v3\" is also the key of FeatureFlag shop/search-v3",
			}},
			{"get as a viewer", viewerUser, []string{"get", "-n", "shop"}, []string{
				"beta.dashboard     Boolean   enabled    25%       1       1         -",
			}},
			{"effective as a viewer", viewerUser, []string{"effective", "-n", "shop", "--user", "alice", "--role", "user"}, []string{
				`beta.dashboard     false     user-override:shop/alice-old     -                      -`,
				`theme              "sepia"   user-override:shop/pilot-alice   2030-01-08T12:00:00Z   pilot customer`,
			}},
			{"explain as a viewer", viewerUser, []string{"explain", "theme", "-n", "shop", "--user", "alice", "--role", "user"}, []string{
				`  4. user-override    APPLIED      shop/pilot-alice serves its own value "sepia"`,
			}},
			{"overrides as a viewer", viewerUser, []string{"overrides", "-n", "shop", "--flag", "beta.dashboard"}, []string{
				"beta.dashboard   user     alice     (on)    lost (to shop/alice-old)   2030-01-08T12:00:00Z   pilot customer   pilot-alice",
			}},
			{"admin impersonating the viewer", "admin", []string{"get", "-n", "shop", "--as", viewerUser, "-o", "name"}, []string{
				"featureflag.flagops.dev/theme",
			}},
			{"a group bound to view", "admin", []string{"effective", "-n", "shop", "--as", groupUser, "--as-group", viewGroup, "--user", "bob"}, []string{
				"checkout.v2        false",
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				stdout, stderr, code := c.runAs(tt.user, tt.args...)
				if code != 0 || stderr != "" {
					t.Fatalf("exit code %d, stderr %q", code, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stdout, w) {
						t.Errorf("stdout does not contain %q:\n%s", w, stdout)
					}
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, user string
			args       []string
			want       string
		}{
			{"viewer in a namespace without a binding", viewerUser, []string{"get", "-n", "billing"},
				`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "viewer-vic" cannot list resource "featureflags" in API group "flagops.dev" in the namespace "billing"`},
			{"viewer in every namespace", viewerUser, []string{"overrides", "-A"},
				`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "viewer-vic" cannot list resource "featureflags" in API group "flagops.dev" at the cluster scope`},
			{"a user without rights", "nobody", []string{"effective", "-n", "shop", "--user", "alice"},
				`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "nobody" cannot list resource "featureflags" in API group "flagops.dev" in the namespace "shop"`},
			{"admin impersonating a user without rights", "admin", []string{"get", "-n", "shop", "--as", "nobody"},
				`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "nobody" cannot list resource "featureflags" in API group "flagops.dev" in the namespace "shop"`},
			{"viewer impersonating the admin", viewerUser, []string{"get", "-n", "shop", "--as", "admin"},
				`Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "viewer-vic" cannot impersonate-on:user-info:list resource "featureflags" in API group "flagops.dev" in the namespace "shop"`},
			{"missing namespace", "admin", []string{"get", "-n", "nowhere"}, `error: namespace "nowhere" not found`},
			{"unknown key", viewerUser, []string{"explain", "nope", "-n", "shop"}, `error: flag "nope" not found in namespace "shop"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				stdout, stderr, code := c.runAs(tt.user, tt.args...)
				if code != 1 || stdout != "" || stderr != tt.want+"\n" {
					t.Errorf("got exit code %d, stdout %q, stderr %q; want 1, nothing and the line %q", code, stdout, stderr, tt.want)
				}
			})
		}
	})

	t.Run("kubectl runs the plugin", func(t *testing.T) {
		// make test builds kubectl and names it in $KUBECTL; a missing one then fails.
		kubectl := os.Getenv("KUBECTL")
		if kubectl == "" {
			var err error
			if kubectl, err = exec.LookPath("kubectl"); err != nil {
				t.Skip("no kubectl: set KUBECTL (make test builds one) or put kubectl on PATH")
			}
		} else if _, err := os.Stat(kubectl); err != nil {
			t.Fatalf("KUBECTL=%s: %v", kubectl, err)
		}
		bin := t.TempDir()
		start := time.Now()
		build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator),
			"github.com/flagops/flagops/cmd/kubectl-flagops", "github.com/flagops/flagops/cmd/kubectl_complete-flagops")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		t.Logf("go build of the plugin: %v", time.Since(start).Round(time.Millisecond))
		home := t.TempDir()
		run := func(args ...string) (string, string, error) {
			cmd := exec.Command(kubectl, args...)
			cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home,
				"KUBECONFIG=" + c.kubeconfigs[viewerUser]}
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			start := time.Now()
			err := cmd.Run()
			t.Logf("kubectl %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
			return out.String(), errOut.String(), err
		}
		stdout, stderr, err := run("plugin", "list")
		if err != nil || !strings.Contains(stdout, filepath.Join(bin, "kubectl-flagops")) {
			t.Fatalf("kubectl plugin list: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		stdout, stderr, err = run("flagops", "get", "-n", "shop")
		if err != nil || !strings.Contains(stdout, "KEY                TYPE") || !strings.Contains(stdout, "beta.dashboard") {
			t.Fatalf("kubectl flagops get: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		stdout, stderr, err = run("flagops", "effective", "-n", "shop", "--user", "alice", "--role", "user", "--attr", "plan=pro", "-o", "json")
		var view EffectiveView
		if err != nil || json.Unmarshal([]byte(stdout), &view) != nil {
			t.Fatalf("kubectl flagops effective: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		if view.Context.UserID != "alice" || view.Context.Role != "user" || view.Context.Attributes["plan"] != "pro" || view.Namespace != "shop" {
			t.Errorf("the arguments did not reach the plugin: %+v", view)
		}
		stdout, stderr, err = run("flagops", "get", "-n", "billing")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || stdout != "" ||
			!strings.HasPrefix(stderr, `Error from server (Forbidden): featureflags.flagops.dev is forbidden: User "viewer-vic" cannot list`) {
			t.Errorf("kubectl flagops get -n billing: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		// A write as the viewer: the arguments reach set, and the API server refuses it.
		stdout, stderr, err = run("flagops", "set", "-n", "shop", "--user", "nina", "--role", "user", "beta.dashboard=true", "--reason", "a b")
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || stdout != "" ||
			stderr != `Error from server (Forbidden): userflagoverrides.flagops.dev is forbidden: User "viewer-vic" cannot create resource "userflagoverrides" in API group "flagops.dev" in the namespace "shop"`+"\n" {
			t.Errorf("kubectl flagops set: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		// kubectl's completion of "kubectl flagops ..." runs kubectl_complete-flagops from PATH.
		stdout, stderr, err = run("__complete", "flagops", "explain", "-n", "shop", "be")
		if err != nil || !strings.HasPrefix(stdout, "beta.dashboard\n") {
			t.Errorf("kubectl __complete flagops explain be: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		stdout, stderr, err = run("__complete", "flagops", "set", "-n", "shop", "--user", "")
		if err != nil || !strings.HasPrefix(stdout, "alice\nbob\ncarol\n") {
			t.Errorf("kubectl __complete flagops set --user: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		stdout, _, err = run("flagops", "--help")
		if err != nil || !strings.Contains(stdout, "kubectl flagops [command]") {
			t.Errorf("kubectl flagops --help does not name the command as typed: %v\n%s", err, stdout)
		}
	})
}
