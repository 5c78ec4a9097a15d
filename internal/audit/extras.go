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

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The user-info extra keys through which flagops' console passes the request it served to
// the admission webhook. The console impersonates the signed-in user and adds these
// extras; only a client allowed to impersonate them (the console's ServiceAccount, with
// RBAC to impersonate exactly these userextras) can set them, so the webhook can trust
// them as it trusts the user name. Each holds one value; see RequestFromExtra.
const (
	// ExtraRoute holds Request.Route, e.g. "POST /users/{id}/overrides".
	ExtraRoute = "flagops.dev/request-route"
	// ExtraSourceIP holds Request.SourceIP, the browser's IP address as the console saw it.
	ExtraSourceIP = "flagops.dev/request-source-ip"
	// ExtraUserAgent holds Request.UserAgent, the browser's User-Agent.
	ExtraUserAgent = "flagops.dev/request-user-agent"
)

// MaxRequestField is the longest Request.Route or Request.UserAgent that RequestFromExtra
// keeps, in bytes; a longer value is cut to it.
const MaxRequestField = 256

// RequestFromExtra returns the request that the user-info extras of a write carry (see
// ExtraRoute, ExtraSourceIP, ExtraUserAgent), or nil when they carry none. A field is kept
// only when its extra has exactly one value, and that value, with surrounding space
// removed, is acceptable: a source IP must parse as an IP address (an IPv4-mapped IPv6
// address becomes IPv4; the address is written in its canonical form); a route or a user
// agent must be valid UTF-8 without control or formatting characters (line breaks, bidi
// overrides), and is cut to MaxRequestField bytes at a character boundary. Anything else
// is dropped, so that a bad value never fails the write and never reaches a record.
func RequestFromExtra(extra map[string][]string) *Request {
	r := &Request{
		Route:     text(extra[ExtraRoute]),
		SourceIP:  ip(extra[ExtraSourceIP]),
		UserAgent: text(extra[ExtraUserAgent]),
	}
	return r.orNil()
}

// text returns the one value of an extra as a route or user agent, or "".
func text(values []string) string {
	if len(values) != 1 {
		return ""
	}
	s := strings.TrimSpace(values[0])
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
		return ""
	}
	if len(s) > MaxRequestField {
		cut := MaxRequestField
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// ip returns the one value of an extra as an IP address, or "".
func ip(values []string) string {
	if len(values) != 1 {
		return ""
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(values[0]))
	if err != nil {
		return ""
	}
	return addr.Unmap().String()
}
