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
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/atomicfile"
	"github.com/flagops/flagops/internal/browsertest"
)

// screenshotsEnv names the variable that makes TestConsoleInBrowser write the screenshots
// of docs/console.md (docs/images/console-*.png); other runs write nothing.
const screenshotsEnv = "CONSOLE_SCREENSHOTS"

// stepTimeout bounds each browser step: generous, for a busy machine.
const stepTimeout = 2 * time.Minute

// TestConsoleInBrowser drives the console in headless Chromium, over HTTPS, against envtest
// with the static tokens of TestConsoleOnCluster and the console's shipped RBAC: the flows
// of issue 14, each checked on what the page shows.
func TestConsoleInBrowser(t *testing.T) {
	browsertest.Executable(t) // skip before starting a cluster when there is no browser
	c := startCluster(t)
	c.recordEvents(t)
	create(t, c.admin, &v1.DeviceFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "device-tab-1"},
		Spec: v1.DeviceFlagOverrideSpec{DeviceID: "tab-1", FlagOverrideSpec: v1.FlagOverrideSpec{Reason: "QA tablet",
			Flags: []v1.FlagOverrideEntry{{Key: "beta.dashboard", Value: js(`true`)}}}}})
	c.markReady(t)
	ts := c.serve(t, Options{})
	ctx := context.Background()
	newBrowser := func(t *testing.T, opts ...browsertest.Option) *browsertest.Browser {
		return browsertest.New(t, append([]browsertest.Option{browsertest.TrustCertificate(ts.Certificate()), browsertest.Timeout(stepTimeout)}, opts...)...)
	}

	t.Run("admin sets an override with an expiry and a reason", func(t *testing.T) {
		b := newBrowser(t)
		signInWith(b, ts, aliceToken)
		b.Do(chromedp.SetValue(chromedp.ID("ns"), "shop"))
		follow(b, chromedp.Click(chromedp.ID("open-namespace")), "flags")
		b.Do(chromedp.SetValue(chromedp.ID("user-id"), "dave"))
		follow(b, chromedp.Click(chromedp.ID("open-user")), "effective")
		expectText(t, b, map[string]string{"subject": "dave", "value-limit": "10", "source-limit": "default", "reason-limit": ""})
		// Links and forms from here on go through htmx, which swaps the page in: the window
		// stays, with this mark.
		b.Do(chromedp.Evaluate[chromedp.Void](`window.sameWindow = typeof htmx`))
		follow(b, chromedp.Click(chromedp.ID("edit-limit")), "editor")
		// The flag's schema allows at most 100: the save is refused, naming the key, and the
		// editor stays open with what was entered.
		b.Do(chromedp.SetValue(chromedp.ID("value-input"), "500"), chromedp.SetValue(chromedp.ID("reason"), "pilot customer"))
		follow(b, chromedp.Click(chromedp.ID("save")), "error")
		if got := browsertest.Run(b, chromedp.Text(chromedp.ID("error"))); !strings.HasPrefix(got, "limit=500: ") {
			t.Errorf("the error says %q, want the key and value named", got)
		}
		expectValues(t, b, map[string]string{"value-input": "500", "reason": "pilot customer"})
		expectText(t, b, map[string]string{"value-limit": "10", "source-limit": "default"})
		b.Do(chromedp.SetValue(chromedp.ID("value-input"), "42"), chromedp.SetValue(chromedp.ID("expires"), "7d"))
		follow(b, chromedp.Click(chromedp.ID("save")), "notice")
		expectText(t, b, map[string]string{"notice": "Saved limit. The values below are the new effective values.", "value-limit": "42", "source-limit": "user override", "reason-limit": "pilot customer"})
		if got := browsertest.Run(b, chromedp.Text(chromedp.ID("expires-limit"))); !strings.HasPrefix(got, time.Now().Add(7*24*time.Hour).UTC().Format("2006-01-02")) {
			t.Errorf("expires %q, want in 7 days", got)
		}
		if n := count(b, "#editor"); n != 0 {
			t.Errorf("the editor is still open after the save")
		}
		if got := browsertest.Run(b, chromedp.Evaluate[string](`String(window.sameWindow)`)); got != "object" {
			t.Errorf("the mark of the window before the edit is %s, want object: htmx did not swap the pages in", got)
		}
		o := &v1.UserFlagOverride{}
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "user-dave"}, o); err != nil || len(o.Spec.Flags) != 1 || string(o.Spec.Flags[0].Value.Raw) != "42" {
			t.Errorf("user-dave: %v %+v", err, o.Spec)
		}
	})

	t.Run("a viewer finds no controls and the API server refuses a crafted POST", func(t *testing.T) {
		b := newBrowser(t)
		signInWith(b, ts, bobToken)
		b.Do(chromedp.Navigate(ts.URL+"/ns/shop/users/dave?edit=limit"), chromedp.WaitVisible(chromedp.ID("effective")))
		expectText(t, b, map[string]string{"value-limit": "42", "source-limit": "user override"})
		if n := count(b, `[id^="edit-"], [id^="clear-"], #editor, #save`); n != 0 {
			t.Errorf("the viewer's user page has %d edit controls", n)
		}
		b.Do(chromedp.Navigate(ts.URL+"/ns/shop/flags"), chromedp.WaitVisible(chromedp.ID("flags")))
		if n := count(b, `[id^="switch-"], [id^="rollout-set-"], input[name="percentage"]`); n != 0 {
			t.Errorf("the viewer's flag list has %d controls", n)
		}
		b.Do(chromedp.Navigate(ts.URL+"/ns/shop/overrides"), chromedp.WaitVisible(chromedp.ID("overrides")))
		if n := count(b, `input[name="select"], #bulk-enable, #bulk-disable`); n != 0 {
			t.Errorf("the viewer's Overrides page has %d controls", n)
		}
		// A request made by a script of the page: same origin, with the session cookie, so
		// the console's CSRF protection lets it through; the API server refuses it.
		type response struct {
			Status int    `json:"status"`
			Text   string `json:"text"`
		}
		res := browsertest.Run(b, chromedp.Evaluate[response](`fetch("/ns/shop/users/erin", {method: "POST",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "key=limit&value.limit=1&version="})
			.then(async r => ({status: r.status, text: await r.text()}))`, chromedp.EvalAwaitPromise))
		if res.Status != 403 || !strings.Contains(res.Text, `Error from server (Forbidden)`) || !strings.Contains(res.Text, `User &#34;bob&#34; cannot create resource &#34;userflagoverrides&#34;`) {
			t.Errorf("the crafted fetch: status %d, body %q", res.Status, errorOf(res.Text))
		}
		// A form the page did not have, submitted: the page that comes back says Forbidden.
		follow(b, chromedp.Evaluate[chromedp.Void](`(() => {
				const f = document.createElement("form");
				f.method = "post";
				f.action = "/ns/shop/flags/beta.dashboard/enabled";
				for (const [name, value] of [["enabled", "false"], ["rv", "1"]]) {
					const i = document.createElement("input");
					i.type = "hidden"; i.name = name; i.value = value;
					f.append(i);
				}
				document.body.append(f);
				f.submit();
			})()`), "error")
		if got := browsertest.Run(b, chromedp.Text(chromedp.ID("error"))); !strings.Contains(got, `Error from server (Forbidden)`) ||
			!strings.Contains(got, `User "bob" cannot patch resource "featureflags"`) {
			t.Errorf("the crafted form's page says %q", got)
		}
		if _, err := getObject(ctx, c, &v1.UserFlagOverride{}, "user-erin"); !apierrors.IsNotFound(err) {
			t.Errorf("user-erin: %v, want NotFound", err)
		}
		if f, err := getObject(ctx, c, &v1.FeatureFlag{}, "beta.dashboard"); err != nil || !f.Spec.Enabled {
			t.Errorf("beta.dashboard after the refused switch: %v, enabled %v", err, f.Spec.Enabled)
		}
	})

	t.Run("the master switch turned off in one tab shows in another", func(t *testing.T) {
		b := newBrowser(t)
		signInWith(b, ts, aliceToken)
		other := b.NewTab(t)
		other.Do(chromedp.Navigate(ts.URL+"/ns/shop/flags/beta.dashboard"), chromedp.WaitVisible(chromedp.ID("spec")))
		expectText(t, other, map[string]string{"state-beta.dashboard": "on"})
		b.Do(chromedp.Navigate(ts.URL + "/ns/shop/flags"))
		follow(b, chromedp.Click(byID("switch-beta.dashboard")), "notice")
		expectText(t, b, map[string]string{"notice": "beta.dashboard: master switch turned off.", "state-beta.dashboard": "off"})
		other.Do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("spec")))
		expectText(t, other, map[string]string{"state-beta.dashboard": "off", "switch-beta.dashboard": "Turn on beta.dashboard"})
		// And back on from the second tab: the flag page returns to itself.
		follow(other, chromedp.Click(byID("switch-beta.dashboard")), "notice")
		expectText(t, other, map[string]string{"notice": "beta.dashboard: master switch turned on.", "state-beta.dashboard": "on", "flag-key": "beta.dashboard"})
		b.Do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("flags")))
		expectText(t, b, map[string]string{"state-beta.dashboard": "on"})
	})

	t.Run("reading with JavaScript off", func(t *testing.T) {
		b := newBrowser(t)
		b.Do(scriptsOff())
		signInWith(b, ts, bobToken)
		if got := browsertest.Run(b, chromedp.Evaluate[string](`typeof htmx`)); got != "undefined" {
			t.Fatalf("htmx is %s: scripts run", got)
		}
		// The start page's form, the flag list's link, the simulator's form: plain GETs.
		b.Do(chromedp.SetValue(chromedp.ID("ns"), "shop"))
		follow(b, chromedp.Click(chromedp.ID("open-namespace")), "flags")
		expectText(t, b, map[string]string{"count": "5 of 5 flags · read-only: you may not change flags in this namespace", "state-theme": "on"})
		follow(b, chromedp.Click(chromedp.ID("open-theme")), "spec")
		expectText(t, b, map[string]string{"flag-key": "theme"})
		b.Do(chromedp.SetValue(chromedp.ID("sim-user"), "alice"), chromedp.SetValue(chromedp.ID("sim-role"), "user"))
		follow(b, chromedp.Click(chromedp.ID("simulate")), "sim-result")
		expectText(t, b, map[string]string{"sim-value": `"sepia"`, "sim-source": "user override"})
		b.Do(chromedp.SetValue(chromedp.ID("user-id"), "dave"))
		follow(b, chromedp.Click(chromedp.ID("open-user")), "effective")
		expectText(t, b, map[string]string{"value-limit": "42", "reason-limit": "pilot customer"})
		b.Do(chromedp.SetValue(chromedp.ID("device-id"), "tab-1"), chromedp.SetValue(chromedp.ID("device-class"), "tablet"))
		follow(b, chromedp.Click(chromedp.ID("open-device")), "effective")
		expectText(t, b, map[string]string{"subject": "tab-1", "source-beta.dashboard": "device override"})
		follow(b, chromedp.Click(chromedp.ID("nav-overrides")), "overrides")
		b.Do(chromedp.SetValue(chromedp.ID("q"), "gina"))
		follow(b, chromedp.Click(chromedp.ID("search")), "entry-user-user-gina-limit")
		expectText(t, b, map[string]string{"count": "1 of 5 override entries, expiring soonest first · read-only: you may not change overrides in this namespace"})
	})

	// The pages of the last two checks, as alice (with every control) and bob.
	pages := []string{
		"/signin", "/?pick=1", "/ns/shop/flags", "/ns/shop/flags?q=nothing-matches",
		"/ns/shop/flags/beta.dashboard", "/ns/shop/flags/theme?sim=1&sim-user=alice&sim-role=user&sim-attrs=plan%3Dpro",
		"/ns/shop/users/dave", "/ns/shop/users/dave?edit=limit", "/ns/shop/users/dave?edit=banner", "/ns/shop/users/dave?edit=beta.dashboard",
		"/ns/shop/users/gina", "/ns/shop/overrides", "/ns/shop/devices/tab-1?class=tablet&edit=theme", "/ns/shop/devices/tab-1",
		"/ns/shop/flags/nope",
	}
	for _, who := range []struct{ name, token string }{{"alice", aliceToken}, {"bob", bobToken}} {
		t.Run("at 375 px every page fits and every control is labelled, as "+who.name, func(t *testing.T) {
			b := newBrowser(t, browsertest.WindowSize(375, 800))
			signInWith(b, ts, who.token)
			for _, path := range pages {
				b.Do(chromedp.Navigate(ts.URL+path), chromedp.WaitVisible(chromedp.ID("main")))
				if w := browsertest.Run(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 375 {
					t.Errorf("%s: the page is %d px wide at 375 px: it scrolls sideways (widest: %s)", path, w,
						browsertest.Run(b, chromedp.Evaluate[string](widestElement)))
				}
				if bad := browsertest.Run(b, chromedp.Evaluate[[]string](unlabelledControls)); len(bad) > 0 {
					t.Errorf("%s: controls without a label: %s", path, strings.Join(bad, ", "))
				}
			}
		})
	}

	t.Run("screenshots", func(t *testing.T) {
		if os.Getenv(screenshotsEnv) == "" {
			t.Skipf("%s is not set: the screenshots of docs/console.md are not written", screenshotsEnv)
		}
		c.markReady(t) // the flags changed above: as the manager would report them
		dir := filepath.Join("..", "..", "docs", "images")
		shoot := func(b *browsertest.Browser, path, wait, name string) {
			t.Helper()
			b.Do(chromedp.Navigate(ts.URL+path), chromedp.WaitVisible(chromedp.ID(wait)))
			png := browsertest.Run(b, chromedp.FullScreenshot(100))
			if err := atomicfile.Write(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b := newBrowser(t, browsertest.WindowSize(1100, 700))
		shoot(b, "/signin", "token", "console-signin.png")
		signInWith(b, ts, aliceToken)
		shoot(b, "/ns/shop/flags", "flags", "console-flags.png")
		shoot(b, "/ns/shop/flags/beta.dashboard?sim=1&sim-user=erin&sim-attrs=plan%3Dpro", "sim-result", "console-flag.png")
		shoot(b, "/ns/shop/users/dave?edit=limit", "editor", "console-user.png")
		shoot(b, "/ns/shop/overrides", "overrides", "console-overrides.png")
		shoot(b, "/ns/shop/devices/tab-1?class=tablet", "effective", "console-device.png")
		narrow := newBrowser(t, browsertest.WindowSize(375, 700))
		signInWith(narrow, ts, aliceToken)
		shoot(narrow, "/ns/shop/users/dave?edit=limit", "editor", "console-user-375.png")
	})
}

// markReady writes the status that the manager (which these tests do not run) writes for
// every flag of shop that it serves: Ready at the flag's generation.
func (c *cluster) markReady(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var flags v1.FeatureFlagList
	if err := c.admin.List(ctx, &flags, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	for i := range flags.Items {
		f := &flags.Items[i]
		f.Status.ObservedGeneration = f.Generation
		apimeta.SetStatusCondition(&f.Status.Conditions, metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1.ReasonReconciled, ObservedGeneration: f.Generation, Message: fmt.Sprintf("serving generation %d", f.Generation)})
		if err := c.admin.Status().Update(ctx, f); err != nil {
			t.Fatalf("status of %s: %v", f.Name, err)
		}
	}
}

// signInWith signs in on the sign-in page with token and waits for the page after it.
func signInWith(b *browsertest.Browser, ts *httptest.Server, token string) {
	b.Do(chromedp.Navigate(ts.URL+"/signin"), chromedp.SetValue(chromedp.ID("token"), token))
	follow(b, chromedp.Click(chromedp.ID("signin")), "signed-in-as")
}

// follow runs act, which leads to another page (a link or a form, through htmx or not), and
// waits until that page shows the element id. The page before is marked, so that an element
// of its own with that id does not count.
func follow(b *browsertest.Browser, act chromedp.Action[chromedp.Void], id string) {
	b.Do(
		chromedp.Evaluate[chromedp.Void](`document.getElementById("main").dataset.left = "1"`),
		act,
		chromedp.WaitVisible(chromedp.CSS(`body:has(main:not([data-left])) [id=`+jsString(id)+`]`)),
	)
}

// byID selects the element with the id: chromedp.ID takes an id with a dot, such as
// state-beta.dashboard, for an id and a class.
func byID(id string) chromedp.CSS {
	return chromedp.CSS(`[id=` + jsString(id) + `]`)
}

// expectText checks the text of elements by id.
func expectText(t *testing.T, b *browsertest.Browser, want map[string]string) {
	t.Helper()
	for id, w := range want {
		if got := browsertest.Run(b, chromedp.TextContent(byID(id))); strings.Join(strings.Fields(got), " ") != w {
			t.Errorf("#%s says %q, want %q", id, got, w)
		}
	}
}

// expectValues checks the values of inputs by id.
func expectValues(t *testing.T, b *browsertest.Browser, want map[string]string) {
	t.Helper()
	for id, w := range want {
		if got := browsertest.Run(b, chromedp.Value(byID(id))); got != w {
			t.Errorf("#%s holds %q, want %q", id, got, w)
		}
	}
}

// count returns how many elements of the page match the CSS selector.
func count(b *browsertest.Browser, selector string) int {
	return browsertest.Run(b, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(selector)+`).length`))
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func getObject[T client.Object](ctx context.Context, c *cluster, obj T, name string) (T, error) {
	return obj, c.admin.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, obj)
}

// scriptsOff disables JavaScript in the tab, as a browser with scripts turned off.
func scriptsOff() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}
}

// unlabelledControls lists the page's inputs (but hidden ones), selects, textareas and
// buttons that have no accessible label: a <label for> with text, an enclosing label,
// aria-label, aria-labelledby naming an element with text, or, for a button, its own text.
// Each is named by its id, or by the start of its HTML.
const unlabelledControls = `(() => {
	const text = el => !!el && el.textContent.trim() !== "";
	const bad = [];
	for (const el of document.querySelectorAll("input, select, textarea, button")) {
		if (el.type === "hidden") continue;
		const labelled = (el.id && text(document.querySelector('label[for="' + CSS.escape(el.id) + '"]'))) ||
			text(el.closest("label")) ||
			(el.getAttribute("aria-label") || "").trim() !== "" ||
			(el.getAttribute("aria-labelledby") || "").split(/\s+/).some(id => id && text(document.getElementById(id))) ||
			(el.tagName === "BUTTON" && text(el));
		if (!labelled) bad.push(el.id ? "#" + el.id : el.outerHTML.slice(0, 80));
	}
	return bad;
})()`

// widestElement names the element that reaches furthest right, its box or its overflowing
// content (the innermost of those that reach as far), to say what makes a page scroll
// sideways.
const widestElement = `(() => {
	let best = null, right = 0;
	for (const el of document.body.querySelectorAll("*")) {
		const r = el.getBoundingClientRect();
		const reach = Math.max(r.right, r.left + el.scrollWidth);
		if (reach >= right) { right = reach; best = el; }
	}
	if (!best) return "";
	return best.tagName.toLowerCase() + (best.id ? "#" + best.id : "") + (best.className ? "." + String(best.className).trim().replace(/\s+/g, ".") : "") +
		" (reaching " + Math.round(right) + " px)";
})()`
