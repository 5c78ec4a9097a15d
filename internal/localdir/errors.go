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

package localdir

import (
	"strconv"
	"strings"
)

// FileError is one problem with one document of one file.
type FileError struct {
	// File is the file's path: the directory given to New joined with the file name.
	File string
	// Doc is the 1-based index of the document in the file (YAML documents are separated by
	// ---), or 0 when the problem concerns the whole file.
	Doc int
	// Object names the object, "<Kind> <name>", when the document got that far.
	Object string
	// Field is the path of the offending field, e.g. spec.rollout.percentage, when known.
	Field string
	// Err is the problem. Its message names the field when Field is set.
	Err error
}

// Error returns e.g. "flags/billing.yaml: document 2 (FeatureFlag billing.limits):
// spec.rollout.percentage: Invalid value: 101: ...".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Doc > 0 {
		b.WriteString(": document ")
		b.WriteString(strconv.Itoa(e.Doc))
	}
	if e.Object != "" {
		b.WriteString(" (")
		b.WriteString(e.Object)
		b.WriteString(")")
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// LoadError lists every problem found in a directory. While a directory has any, nothing
// of it is applied: the store keeps the last good state.
type LoadError struct {
	// Errors are ordered by file, then document.
	Errors []FileError
}

// Error lists the problems, one per line.
func (e *LoadError) Error() string {
	lines := make([]string, 0, len(e.Errors)+1)
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	lines = append(lines, strconv.Itoa(len(e.Errors))+" errors:")
	for i := range e.Errors {
		lines = append(lines, "  "+e.Errors[i].Error())
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the file errors, for errors.As and errors.Is.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i := range e.Errors {
		out[i] = &e.Errors[i]
	}
	return out
}
