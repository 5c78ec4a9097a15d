//go:build e2e

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

package e2ecluster

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/kubectl"
)

// pluginRun is one run of kubectl flagops.
type pluginRun struct {
	stdout, stderr string
	err            error
}

// pluginSpec runs kubectl flagops the way a platform team does: the real kubectl finds the
// plugin on PATH, the user is impersonated with --as, and the manager and the evaluator in
// the cluster see what the plugin wrote.
func pluginSpec() {
	const editor, viewer = "e2e-plugin-editor", "e2e-plugin-viewer"
	const key, userID = "plugin.beta", "alice"
	ns := newNamespace("e2e-plugin-")
	bind(ns, "edit", editor)
	bind(ns, "view", viewer)

	bin := GinkgoT().TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, "kubectl-flagops"), "./cmd/kubectl-flagops")
	build.Dir = repoRoot
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	flagops := func(as string, args ...string) pluginRun {
		GinkgoHelper()
		cmd := exec.Command("kubectl", append([]string{"flagops", "-n", ns, "--as", as}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		line := strings.Join(append([]string{"kubectl flagops --as", as}, args...), " ")
		GinkgoWriter.Printf("$ %s\n%s%s", line, stdout.String(), stderr.String())
		return pluginRun{stdout.String(), stderr.String(), err}
	}
	effective := func(g Gomega, as string) kubectl.EffectiveFlag {
		r := flagops(as, "effective", "--user", userID, "-o", "json")
		g.Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		var view kubectl.EffectiveView
		g.Expect(json.Unmarshal([]byte(r.stdout), &view)).To(Succeed(), r.stdout)
		for _, f := range view.Flags {
			if f.Key == key {
				return f
			}
		}
		g.Expect(view.Flags).To(ContainElement(HaveField("Key", key)))
		return kubectl.EffectiveFlag{}
	}

	By("finding the plugin through kubectl")
	Expect(flagops(viewer, "version").stdout).To(ContainSubstring("kubectl-flagops"))

	Expect(k8s.Create(ctx, boolFlag(ns, key))).To(Succeed())
	ip := evaluatorIP()
	// The viewer reads the flag locally once the manager has reported on it; the evaluator
	// serves the same value.
	var before kubectl.EffectiveFlag
	Eventually(func(g Gomega) {
		before = effective(g, viewer)
		g.Expect(before.Notes).To(BeEmpty(), "the manager has reported on the flag")
		g.Expect(before.SourceKind).To(Equal("default"))
		g.Expect(evaluate(g, ip, ns, key, map[string]string{"userId": userID})).To(MatchJSON(before.Value))
	}).Should(Succeed())
	want := "true"
	if string(before.Value) == "true" {
		want = "false"
	}

	By("refusing the viewer's set on the API server, with a server dry run that stores nothing either way")
	r := flagops(viewer, "set", "--user", userID, key+"="+want, "--reason", "e2e", "--dry-run=server")
	Expect(r.err).To(HaveOccurred())
	Expect(r.stderr).To(ContainSubstring("forbidden"))
	Expect(r.stderr).To(ContainSubstring("userflagoverrides"))
	r = flagops(editor, "set", "--user", userID, key+"="+want, "--reason", "e2e", "--dry-run=server")
	Expect(r.err).NotTo(HaveOccurred(), r.stderr)
	Expect(r.stdout).To(ContainSubstring("created (server dry run)"))
	var overrides v1.UserFlagOverrideList
	Expect(k8s.List(ctx, &overrides, client.InNamespace(ns))).To(Succeed())
	Expect(overrides.Items).To(BeEmpty())

	By("setting the user's override as the editor: the plugin, the evaluator and the history agree")
	r = flagops(editor, "set", "--user", userID, key+"="+want, "--expires-in", "7d", "--reason", "e2e pilot", "-o", "json")
	Expect(r.err).NotTo(HaveOccurred(), r.stderr)
	var result kubectl.WriteResult
	Expect(json.Unmarshal([]byte(r.stdout), &result)).To(Succeed(), r.stdout)
	Expect(result.OK).To(BeTrue())
	Expect(result.ChangedKeys).To(Equal([]string{key}))
	Expect(result.Flags).To(HaveKeyWithValue(key, MatchJSON(want)))
	Eventually(func(g Gomega) {
		f := effective(g, viewer)
		g.Expect(f.Value).To(MatchJSON(want))
		g.Expect(f.SourceKind).To(Equal("user-override"))
		g.Expect(f.Override).NotTo(BeNil())
		g.Expect(f.Override.Reason).To(Equal("e2e pilot"))
		g.Expect(f.Override.ExpiresAt).NotTo(BeEmpty())
		g.Expect(evaluate(g, ip, ns, key, map[string]string{"userId": userID})).To(MatchJSON(want))
	}).Should(Succeed())
	Eventually(func(g Gomega) {
		r := flagops(viewer, "history", "--user", userID, "-o", "json")
		g.Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		var entries []kubectl.HistoryEntry
		g.Expect(json.Unmarshal([]byte(r.stdout), &entries)).To(Succeed(), r.stdout)
		g.Expect(entries).To(ContainElement(And(
			HaveField("Action", "user_override.created"),
			HaveField("Actor", editor),
			HaveField("Verified", HaveValue(BeTrue())),
			HaveField("Keys", ContainElement(key)),
		)), r.stdout)
	}).Should(Succeed())

	By("a server dry run of the master switch that leaves the flag as it was")
	r = flagops(editor, "disable", key, "--dry-run=server")
	Expect(r.err).NotTo(HaveOccurred(), r.stderr)
	Expect(r.stdout).To(ContainSubstring("(server dry run)"))
	var flag v1.FeatureFlag
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: key}, &flag)).To(Succeed())
	Expect(flag.Spec.Enabled).To(BeTrue())

	By("clearing the override: the user falls back to the flag's own value")
	r = flagops(editor, "clear", "--user", userID)
	Expect(r.err).NotTo(HaveOccurred(), r.stderr)
	Eventually(func(g Gomega) {
		g.Expect(evaluate(g, ip, ns, key, map[string]string{"userId": userID})).To(MatchJSON(before.Value))
	}).Should(Succeed())
}
