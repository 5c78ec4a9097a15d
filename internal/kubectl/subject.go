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
	"fmt"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

// subject is the user or device whose overrides a command changes; override an override
// object of either kind (package flagadmin).
type (
	subject  = flagadmin.Subject
	override = flagadmin.Override
)

// subjectOf returns the device when --device is given, else the user.
func subjectOf(c *contextFlags) (subject, error) {
	switch {
	case c.device != "":
		if c.deviceClass == "" {
			return subject{}, fmt.Errorf("--device-class is required with --device: overrides apply only to devices of an eligible class")
		}
		return subject{Kind: evaluator.SubjectDevice, ID: c.device}, nil
	case c.user != "":
		return subject{Kind: evaluator.SubjectUser, ID: c.user}, nil
	}
	return subject{}, fmt.Errorf("--user or --device is required")
}

// subjectObjectName is the name of the override object set writes for a subject
// (flagadmin.SubjectObjectName).
func subjectObjectName(kind evaluator.SubjectKind, id string) string {
	return flagadmin.SubjectObjectName(kind, id)
}
