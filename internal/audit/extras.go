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

package audit

// The user-info extra keys through which flagops' console passes the request it served to
// the admission webhook. The console impersonates the signed-in user and adds these
// extras; only a client allowed to impersonate them (the manager's ServiceAccount, for
// exactly these keys) can set them, so the webhook can trust them as it trusts the user
// name. Each holds at most one value.
const (
	// ExtraRoute holds Request.Route, e.g. "POST /users/{id}/overrides".
	ExtraRoute = "flagops.dev/request-route"
	// ExtraSourceIP holds Request.SourceIP, the browser's IP address as the console saw it.
	ExtraSourceIP = "flagops.dev/request-source-ip"
	// ExtraUserAgent holds Request.UserAgent, the browser's User-Agent.
	ExtraUserAgent = "flagops.dev/request-user-agent"
)
