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
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/flagadmin"
)

// contextFlags are the evaluation context of effective and explain.
type contextFlags struct {
	user, device, deviceClass, org, role string
	attrs                                []string
}

func (c *contextFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.user, "user", "", "The user id (userId) to evaluate for.")
	f.StringVar(&c.device, "device", "", "The device id (deviceId); needs --device-class.")
	f.StringVar(&c.deviceClass, "device-class", "", "The device class (deviceClass), e.g. phone, tablet, laptop, charger.")
	f.StringVar(&c.org, "org", "", "The organisation id (orgId).")
	f.StringVar(&c.role, "role", "", "The role (role); none means guest to role gates.")
	f.StringArrayVar(&c.attrs, "attr", nil, "A free attribute NAME=VALUE, repeatable. Values are strings, as in the server's query parameters.")
}

// wellKnownFlags maps the well-known attributes to the flag that sets each.
var wellKnownFlags = map[string]string{
	evaluator.AttrUserID: "--user", evaluator.AttrDeviceID: "--device", evaluator.AttrDeviceClass: "--device-class",
	evaluator.AttrOrgID: "--org", evaluator.AttrRole: "--role", evaluator.AttrTargetingKey: "--user",
}

// context builds the evaluation context and checks it: every --attr is NAME=VALUE with a new
// name that is not a well-known attribute, and a device comes with its class (overrides apply
// only to devices of an eligible class, so the server's views require it too).
func (c *contextFlags) context() (evaluator.Context, error) {
	ctx := evaluator.Context{
		UserID: c.user, DeviceID: c.device, DeviceClass: c.deviceClass, OrgID: c.org, Role: c.role,
	}
	if c.device != "" && c.deviceClass == "" {
		return evaluator.Context{}, fmt.Errorf("--device-class is required with --device: overrides apply only to devices of an eligible class")
	}
	for _, a := range c.attrs {
		name, val, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return evaluator.Context{}, fmt.Errorf("--attr %s: want NAME=VALUE", strconv.Quote(a))
		}
		if flag, known := wellKnownFlags[name]; known {
			return evaluator.Context{}, fmt.Errorf("--attr %s: %s is a well-known attribute; use %s", strconv.Quote(a), name, flag)
		}
		if _, dup := ctx.Attributes[name]; dup {
			return evaluator.Context{}, fmt.Errorf("--attr %s: attribute %s is given twice", strconv.Quote(a), strconv.Quote(name))
		}
		if ctx.Attributes == nil {
			ctx.Attributes = map[string]any{}
		}
		ctx.Attributes[name] = val
	}
	return ctx, nil
}

// parseDuration reads a positive duration: Go's form (90m, 24h, 1h30m) or whole days (7d).
func parseDuration(flag, s string) (time.Duration, error) { return flagadmin.ParseDuration(flag, s) }
