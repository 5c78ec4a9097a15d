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

// Package tck runs OpenFeature provider conformance scenarios, in the spirit of
// OpenFeature's provider TCK (open-feature/flagd-testbed and the specification's
// gherkin suite), against flagops' Go provider (sdk/go) connected to a real
// `flagops serve --dir` process. features/ holds the scenarios, flags/ the TCK's
// canonical flag set translated into FeatureFlag manifests.
//
// A flagops provider holds the values of one evaluation context, so a scenario does
// not pass its context to a shared provider: it gets the provider of its context
// (one per distinct context, made when first needed and kept for the run), and the
// context is also passed with the evaluation, as an application would.
//
// A scenario that flagops does not model carries one tag @skip-<reason>; the suite
// leaves out every such tag and reports how many scenarios each one skipped.
package tck

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gherkin "github.com/cucumber/gherkin/go/v42"
	"github.com/cucumber/godog"
	messages "github.com/cucumber/messages/go/v34"

	"github.com/flagops/flagops/test/servetest"
)

const skipPrefix = "@skip-"

// TestConformance runs every scenario of features/ that no @skip-<reason> tag leaves
// out; a failing scenario (or an undefined or pending step: the suite is strict)
// fails the test.
func TestConformance(t *testing.T) {
	skipped, err := skippedScenarios("features")
	if err != nil {
		t.Fatal(err)
	}
	s := newSuite(t)
	exclude := make([]string, 0, len(skipped))
	for _, tag := range slices.Sorted(maps.Keys(skipped)) {
		exclude = append(exclude, "~"+tag)
	}
	status := godog.TestSuite{
		Name:                "flagops-tck",
		ScenarioInitializer: s.initScenario,
		Options: &godog.Options{
			Format:   "pretty",
			NoColors: true,
			Output:   t.Output(),
			Paths:    []string{"features"},
			Tags:     strings.Join(exclude, " && "),
			Strict:   true,
		},
	}.Run()

	total := 0
	for _, tag := range slices.Sorted(maps.Keys(skipped)) {
		total += len(skipped[tag])
		for _, name := range skipped[tag] {
			t.Logf("skipped (%s): %s", strings.TrimPrefix(tag, skipPrefix), name)
		}
	}
	t.Logf("TCK scenarios: %d passed, %d failed, %d skipped", s.passed, s.failed, total)
	if status != 0 {
		t.Fatalf("godog exited with status %d: see the scenarios above", status)
	}
	if s.passed == 0 {
		t.Fatal("no scenario ran")
	}
}

// skippedScenarios returns the scenarios (one per row of an outline) of the feature
// files in dir that carry a @skip-<reason> tag, by tag. A scenario must carry at most
// one, so that each is counted once.
func skippedScenarios(dir string) (map[string][]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.feature"))
	if err != nil {
		return nil, fmt.Errorf("failed to list the feature files: %w", err)
	}
	ids := (&messages.Incrementing{}).NewId
	out := map[string][]string{}
	var errs []error
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("failed to open %s: %w", path, err)
		}
		doc, err := gherkin.ParseGherkinDocument(f, ids)
		_ = f.Close() // read only
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", path, err)
		}
		rows := exampleRows(doc)
		for _, p := range gherkin.Pickles(*doc, path, ids) {
			var tags []string
			for _, tag := range p.Tags {
				if strings.HasPrefix(tag.Name, skipPrefix) && !slices.Contains(tags, tag.Name) {
					tags = append(tags, tag.Name)
				}
			}
			switch len(tags) {
			case 0:
			case 1:
				name := filepath.Base(path) + ": " + p.Name
				if len(p.AstNodeIds) > 1 {
					name += " | " + rows[p.AstNodeIds[1]] + " |"
				}
				out[tags[0]] = append(out[tags[0]], name)
			default:
				errs = append(errs, fmt.Errorf("%s: scenario %q has %d skip tags %v, want one", path, p.Name, len(tags), tags))
			}
		}
	}
	return out, errors.Join(errs...)
}

// exampleRows returns the cells of every examples row of doc, by the row's ID.
func exampleRows(doc *messages.GherkinDocument) map[string]string {
	rows := map[string]string{}
	if doc.Feature == nil {
		return rows
	}
	for _, child := range doc.Feature.Children {
		if child.Scenario == nil {
			continue
		}
		for _, ex := range child.Scenario.Examples {
			for _, row := range ex.TableBody {
				cells := make([]string, len(row.Cells))
				for i, c := range row.Cells {
					cells[i] = c.Value
				}
				rows[row.Id] = strings.Join(cells, " | ")
			}
		}
	}
	return rows
}

// suite is what the scenarios share: the flagops binary, the server most of them use
// and its providers, and the counts.
type suite struct {
	t      *testing.T
	bin    string
	shared *servetest.Server
	// clients are the shared server's clients, one per evaluation context.
	clients map[string]*providerClient

	passed, failed int
}

func newSuite(t *testing.T) *suite {
	s := &suite{t: t, bin: servetest.Build(t), clients: map[string]*providerClient{}}
	s.shared = servetest.Start(t, s.bin, copyFlags(t), "127.0.0.1:0")
	return s
}

// copyFlags copies flags/ into a new temporary directory, which scenarios may change,
// and returns it.
func copyFlags(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join("flags", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no flags/*.yaml")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		servetest.WriteAtomic(t, filepath.Join(dir, filepath.Base(f)), string(b))
	}
	return dir
}
