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

// Package console is flagops' web console (`flagops console`): the flag list of a namespace
// (seed 003's master switch and rollout, seed 004's role badges, seed 001's override counts)
// and every flag's value for one user or device with its source, expiry and reason, with
// Edit and Clear override (seed 000's per-user Feature flags tab). It is server-rendered
// html/template with one vendored htmx file, both embedded; every page works for reading
// with JavaScript off.
//
// # Identity
//
// The console never writes as itself. A user signs in with a bearer token, pasted or (opt-in)
// from an authenticating proxy's Authorization header on POST /signin; the console checks it
// with a TokenReview for the configured audience and keeps it, sealed with AES-256-GCM under
// a key every replica shares, in an HttpOnly, Secure, SameSite=Strict cookie. Nothing about a
// session is kept on the server but a cache of TokenReview answers by the token's SHA-256
// (for ReviewTTL), so replicas are stateless and a revoked token stops working within the
// TTL. Every read and write of flagops objects is made through a client built for the
// request: the console's own credentials impersonating the reviewed user, UID, groups and
// extra, plus the request's route, source IP and user agent as the extras of
// internal/audit (IdentityImpersonate), or the user's token itself (IdentityPassthrough). A
// SubjectAccessReview only decides which controls to show; the API server's decision on the
// write is the enforcement.
//
// # Invariants
//
//   - The console's routes accept only the session cookie: a request with an Authorization
//     header is refused (with SignInWithAuthorizationHeader, the header is read on POST
//     /signin only and dropped elsewhere). Nothing of the browser's request but the three
//     extras reaches the API server: no header is forwarded, so a client-sent
//     Impersonate-User is never used.
//   - No GET changes anything; every POST passes net/http's CrossOriginProtection (no bypass
//     patterns). Every response carries a CSP that allows only the console's own scripts and
//     styles, and the templates have no inline script or style.
//   - Writes are flagadmin's: nothing is written until every value passed its flag's schema;
//     every write carries the resourceVersion of the state the page showed (the subject's
//     override objects' versions, or the flag's), so a change made meanwhile is a 409 that
//     shows the new state; an object that a GitOps tool manages is shown read-only and not
//     written.
package console
