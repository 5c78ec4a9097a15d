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
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/flagadmin"
)

// User is the signed-in Kubernetes user, as TokenReview returned it.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// serviceAccountPrefix starts the user name of every ServiceAccount.
const serviceAccountPrefix = "system:serviceaccount:"

// errUnauthenticated is a token the API server does not accept (expired, revoked, for
// another audience): sign in again.
var errUnauthenticated = errors.New("the API server does not accept the token (expired, revoked, or for another audience)")

// session is a signed-in request: its token and whom it stands for.
type session struct {
	token string
	user  *User
}

// backend is what the console asks of the cluster. Every read and write of flagops objects
// goes through a client of the signed-in user; allowed only decides which controls to show.
type backend interface {
	// review returns the user of a bearer token, or errUnauthenticated.
	review(ctx context.Context, token string) (*User, error)
	// client returns a client that acts as the session's user, with extras (the request's
	// route, source IP and user agent) added to the impersonated user where the identity
	// mode allows.
	client(s *session, extras map[string]string) (client.Client, error)
	// allowed reports whether the session's user may verb resource (a flagops resource) in
	// namespace ns, as the API server would decide it now.
	allowed(ctx context.Context, s *session, ns, verb, resource string) (bool, error)
}

// kubeBackend is the backend of a cluster, with the console's own identity (cfg) for
// TokenReview and SubjectAccessReview. It holds the two API groups' clients, not a whole
// clientset: an interface value of the clientset keeps every typed client of client-go in
// the binary (about 8 MB).
type kubeBackend struct {
	cfg      *rest.Config
	authn    authnv1.AuthenticationV1Interface
	authz    authzv1.AuthorizationV1Interface
	identity Identity
	audience string
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]reviewed
}

// reviewed is a cached TokenReview result.
type reviewed struct {
	user    *User
	expires time.Time
}

// maxCached bounds the TokenReview cache.
const maxCached = 10000

func newKubeBackend(cfg *rest.Config, o *Options) (*kubeBackend, error) {
	authn, err := authnv1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create a client of the API server: %w", err)
	}
	authz, err := authzv1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create a client of the API server: %w", err)
	}
	return &kubeBackend{cfg: cfg, authn: authn, authz: authz, identity: o.Identity, audience: o.TokenAudience, ttl: o.ReviewTTL, now: o.now,
		cache: map[[sha256.Size]byte]reviewed{}}, nil
}

// review asks the API server who the token is, with TokenReview for the console's audience,
// and caches a positive answer for the review TTL by the token's SHA-256, so that a revoked
// token stops working within it.
func (b *kubeBackend) review(ctx context.Context, token string) (*User, error) {
	key := sha256.Sum256([]byte(token))
	now := b.now()
	b.mu.Lock()
	c, ok := b.cache[key]
	b.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.user, nil
	}
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if b.audience != "" {
		tr.Spec.Audiences = []string{b.audience}
	}
	res, err := b.authn.TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to review the token: %w", err)
	}
	if !res.Status.Authenticated || res.Status.User.Username == "" ||
		b.audience != "" && !slices.Contains(res.Status.Audiences, b.audience) {
		return nil, errUnauthenticated
	}
	u := &User{Name: res.Status.User.Username, UID: res.Status.User.UID, Groups: res.Status.User.Groups}
	for k, v := range res.Status.User.Extra {
		if u.Extra == nil {
			u.Extra = map[string][]string{}
		}
		u.Extra[k] = slices.Clone(v)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cache) >= maxCached {
		for k, c := range b.cache {
			if !now.Before(c.expires) || len(b.cache) >= maxCached {
				delete(b.cache, k)
			}
		}
	}
	b.cache[key] = reviewed{user: u, expires: now.Add(b.ttl)}
	return u, nil
}

// userConfig returns the rest.Config that acts as the session's user: the console's own
// credentials impersonating the user (Identity impersonate), or the user's token alone
// (Identity passthrough). Nothing of the browser's request is forwarded but extras.
func (b *kubeBackend) userConfig(s *session, extras map[string]string) *rest.Config {
	if b.identity == IdentityPassthrough {
		cfg := rest.AnonymousClientConfig(b.cfg)
		cfg.BearerToken = s.token
		return cfg
	}
	cfg := rest.CopyConfig(b.cfg)
	cfg.Impersonate = impersonation(s.user, extras)
	return cfg
}

// impersonation is the impersonated user of a session. A ServiceAccount is impersonated by
// its name alone: constrained impersonation (KEP-5284) lets a ServiceAccount be impersonated
// only so, and the API server adds its groups; it carries no extras then.
func impersonation(u *User, extras map[string]string) rest.ImpersonationConfig {
	if strings.HasPrefix(u.Name, serviceAccountPrefix) {
		return rest.ImpersonationConfig{UserName: u.Name}
	}
	imp := rest.ImpersonationConfig{UserName: u.Name, UID: u.UID, Groups: slices.Clone(u.Groups)}
	for k, v := range u.Extra {
		if imp.Extra == nil {
			imp.Extra = map[string][]string{}
		}
		imp.Extra[k] = slices.Clone(v)
	}
	for k, v := range extras {
		if v == "" {
			continue // the API server refuses an empty extra value
		}
		if imp.Extra == nil {
			imp.Extra = map[string][]string{}
		}
		imp.Extra[k] = []string{v}
	}
	return imp
}

func (b *kubeBackend) client(s *session, extras map[string]string) (client.Client, error) {
	return flagadmin.NewClient(b.userConfig(s, extras))
}

// allowed asks the API server whether the user may verb resource in ns: a
// SubjectAccessReview by the console for the reviewed user, or, in passthrough mode, a
// SelfSubjectAccessReview with the user's token. It only decides which controls to show.
func (b *kubeBackend) allowed(ctx context.Context, s *session, ns, verb, resource string) (bool, error) {
	attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: v1.GroupVersion.Group, Resource: resource}
	if b.identity == IdentityPassthrough {
		authz, err := authzv1.NewForConfig(b.userConfig(s, nil))
		if err != nil {
			return false, fmt.Errorf("failed to create a client of the API server: %w", err)
		}
		res, err := authz.SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}}, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("failed to review access: %w", err)
		}
		return res.Status.Allowed, nil
	}
	spec := authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: attrs, User: s.user.Name, UID: s.user.UID, Groups: s.user.Groups}
	for k, v := range s.user.Extra {
		if spec.Extra == nil {
			spec.Extra = map[string]authorizationv1.ExtraValue{}
		}
		spec.Extra[k] = v
	}
	res, err := b.authz.SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("failed to review access: %w", err)
	}
	return res.Status.Allowed, nil
}
