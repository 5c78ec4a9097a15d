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

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A template is one object of config/default on its way to becoming a Helm template. Its
// YAML tree is edited in place: a value that the chart substitutes is replaced by a
// placeholder scalar (__chartgen_N__), and render swaps each placeholder in the encoded
// YAML for its template text. Substituting after encoding keeps the text of the template
// out of the YAML encoder, which would quote it.
type template struct {
	root *yaml.Node // the document's mapping node
	subs map[string]substitution
	// conds are the conditions (Go template pipelines) under which the object is rendered.
	conds []string
}

// A substitution is the template text of one placeholder.
type substitution struct {
	// line: the text replaces the whole line that holds the placeholder (an entry added to
	// a mapping, an item added to a sequence) and is indented by text itself; otherwise it
	// replaces the placeholder within its line.
	line bool
	// text returns the template text, given the column at which the placeholder's line
	// starts (its key, or the dash of its sequence item).
	text func(indent int) string
}

var placeholderRE = regexp.MustCompile(`__chartgen_[0-9]+__`)

func (t *template) placeholder(s substitution) string {
	key := fmt.Sprintf("__chartgen_%d__", len(t.subs))
	t.subs[key] = s
	return key
}

// setInline replaces the value n with text.
func (t *template) setInline(n *yaml.Node, text func(indent int) string) {
	*n = *scalar(t.placeholder(substitution{text: text}))
}

// addEntry adds to the mapping m a line of template text, after the entry after (at the
// end when after is "" or missing).
func (t *template) addEntry(m *yaml.Node, after string, text func(indent int) string) {
	k := scalar(t.placeholder(substitution{line: true, text: text}))
	v := scalar("")
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if after != "" && m.Content[i].Value == after {
			at = i + 2
		}
	}
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
}

// addItem adds to the sequence s a line of template text at the end.
func (t *template) addItem(s *yaml.Node, text func(indent int) string) {
	s.Content = append(s.Content, scalar(t.placeholder(substitution{line: true, text: text})))
}

// replaceItem replaces the scalar item value of the sequence s with a line of template text.
func (t *template) replaceItem(s *yaml.Node, value string, text func(indent int) string) error {
	for _, it := range s.Content {
		if it.Kind == yaml.ScalarNode && it.Value == value {
			*it = *scalar(t.placeholder(substitution{line: true, text: text}))
			return nil
		}
	}
	return fmt.Errorf("no item %q", value)
}

// render encodes the object and substitutes the placeholders.
func (t *template) render() (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t.root); err != nil {
		return "", fmt.Errorf("failed to encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("failed to encode: %w", err)
	}
	var out strings.Builder
	used := 0
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		keys := placeholderRE.FindAllString(line, -1)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for _, key := range keys {
			s, ok := t.subs[key]
			if !ok {
				return "", fmt.Errorf("unknown placeholder %s", key)
			}
			used++
			if s.line {
				body := strings.TrimLeft(line, " ")
				if strings.HasPrefix(body, "- ") {
					// The dash of a sequence item is where its text starts.
				} else if !strings.HasPrefix(body, key+":") {
					return "", fmt.Errorf("placeholder %s is not alone on its line: %q", key, line)
				}
				line = s.text(indent) + "\n"
				break
			}
			line = strings.Replace(line, key, s.text(indent), 1)
		}
		out.WriteString(line)
	}
	if used != len(t.subs) {
		return "", fmt.Errorf("%d of %d placeholders were not in the encoded YAML", len(t.subs)-used, len(t.subs))
	}
	text := out.String()
	for i := len(t.conds) - 1; i >= 0; i-- {
		text = "{{- if " + t.conds[i] + " }}\n" + text + "{{- end }}\n"
	}
	return text, nil
}

// decodeAll reads every YAML document of r.
func decodeAll(r io.Reader) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(r)
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to decode YAML: %w", err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		docs = append(docs, doc.Content[0])
	}
}

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

// get follows the mapping keys path from n; nil if one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// mustGet is get that fails, naming the path, when it is missing.
func mustGet(n *yaml.Node, path ...string) (*yaml.Node, error) {
	if v := get(n, path...); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("no %s", strings.Join(path, "."))
}

// str is the scalar at path, or "".
func str(n *yaml.Node, path ...string) string {
	if v := get(n, path...); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// walkValues calls f on every scalar value under n (never on a mapping key).
func walkValues(n *yaml.Node, f func(*yaml.Node) error) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return f(n)
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := walkValues(n.Content[i], f); err != nil {
				return err
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if err := walkValues(c, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// toYAML encodes n with its lines indented by indent spaces, without a final newline.
func toYAML(n *yaml.Node, indent int) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", fmt.Errorf("failed to encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("failed to encode: %w", err)
	}
	return indentLines(strings.TrimSuffix(buf.String(), "\n"), indent), nil
}

// indentLines prefixes every non-empty line of s with indent spaces.
func indentLines(s string, indent int) string {
	pad := strings.Repeat(" ", indent)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
