package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/evaluator"
)

// Defaults for AuthOptions.
const (
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultTokenCacheSize   = 4096
)

// Claim values of context tokens.
const (
	// AudiencePrefix prefixes the namespace in the aud claim: a token for
	// namespace shop has "flagops:shop" in aud.
	AudiencePrefix = "flagops:"
	// ScopeAdmin in the scope claim grants the admin routes (explain and
	// the user and device views).
	ScopeAdmin = "flagops:admin"
	// ScopeSync in the scope claim grants the sync stream (GET /v1/sync):
	// every flag and override of the namespace, for in-process providers
	// of server-side applications. Devices must never hold it.
	ScopeSync = "flagops:sync"
)

// maxTokenBytes bounds a context token; longer ones are rejected unread.
const maxTokenBytes = 8 << 10

// AuthOptions configures an Authenticator.
type AuthOptions struct {
	// Keys are the public keys of EdDSA, RS256 and ES256 tokens; SetKeys
	// replaces them. Nil accepts no asymmetric token.
	Keys *KeySet
	// HS256Secret, when set, also accepts HS256 tokens signed with it. It
	// must be at least MinHS256SecretBytes long. Whoever holds it can mint
	// tokens: prefer Keys.
	HS256Secret []byte
	// MaxLifetime bounds exp - iat (exp - now when iat is absent). Zero
	// selects DefaultMaxTokenLifetime.
	MaxLifetime time.Duration
	// ClientSettable lists the free attributes a request may set when its
	// token does not; every other attribute comes from the token only.
	// Well-known attributes (userId, deviceClass, ...) cannot be listed.
	ClientSettable []string
	// CacheSize bounds the verified-token cache. Zero selects
	// DefaultTokenCacheSize; negative disables the cache.
	CacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator verifies context tokens: JWTs whose signature, exp,
// lifetime, nbf and iat are checked and whose ctx claim is the whole
// evaluation context. It caches verified tokens until their exp; changing
// the keys drops the cache. It is safe for concurrent use.
type Authenticator struct {
	keys        atomic.Pointer[KeySet]
	hs256       []byte
	maxLifetime time.Duration
	settable    []string
	now         func() time.Time
	cache       *tokenCache
}

// NewAuthenticator checks o and returns an Authenticator. At least one of
// Keys and HS256Secret is required.
func NewAuthenticator(o AuthOptions) (*Authenticator, error) {
	if o.Keys == nil && o.HS256Secret == nil {
		return nil, errors.New("no keys: give public keys or an HS256 secret")
	}
	if o.HS256Secret != nil && len(o.HS256Secret) < MinHS256SecretBytes {
		return nil, fmt.Errorf("the HS256 secret is %d bytes, fewer than %d", len(o.HS256Secret), MinHS256SecretBytes)
	}
	if o.MaxLifetime < 0 {
		return nil, fmt.Errorf("maximum token lifetime %s is negative", o.MaxLifetime)
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxTokenLifetime
	}
	for _, a := range o.ClientSettable {
		if err := checkSettable(a); err != nil {
			return nil, err
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultTokenCacheSize
	}
	a := &Authenticator{
		hs256: bytes.Clone(o.HS256Secret), maxLifetime: o.MaxLifetime,
		settable: slices.Clone(o.ClientSettable), now: o.Now,
	}
	if o.CacheSize > 0 {
		a.cache = &tokenCache{max: o.CacheSize, m: map[string]*verifiedToken{}}
	}
	a.keys.Store(o.Keys)
	return a, nil
}

// wellKnown are the attributes that identify the subject or its device;
// they come from the token only.
var wellKnown = []string{
	evaluator.AttrTargetingKey, evaluator.AttrUserID, evaluator.AttrOrgID,
	evaluator.AttrRole, evaluator.AttrDeviceID, evaluator.AttrDeviceClass,
}

func checkSettable(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("empty client-settable attribute name")
	case slices.Contains(wellKnown, name):
		return fmt.Errorf("client-settable attribute %q: well-known attributes come from the token only", name)
	}
	return nil
}

// SetKeys replaces the public keys (nil: accept no asymmetric token) and
// drops every cached verification.
func (a *Authenticator) SetKeys(ks *KeySet) {
	a.keys.Store(ks)
	if a.cache != nil {
		a.cache.clear()
	}
}

// Keys returns the current public keys.
func (a *Authenticator) Keys() *KeySet { return a.keys.Load() }

// ClientSettable returns the free attributes a request may set.
func (a *Authenticator) ClientSettable() []string { return slices.Clone(a.settable) }

// verifiedToken is a token whose signature and times were checked. It is
// shared through the cache and read-only.
type verifiedToken struct {
	raw   string
	keys  *KeySet // the keys it was verified with
	ctx   evaluator.Context
	aud   []string
	admin bool
	sync  bool
	exp   time.Time
}

// forNamespace reports whether aud names namespace ns.
func (v *verifiedToken) forNamespace(ns string) bool {
	for _, a := range v.aud {
		if len(a) == len(AudiencePrefix)+len(ns) && strings.HasPrefix(a, AudiencePrefix) && a[len(AudiencePrefix):] == ns {
			return true
		}
	}
	return false
}

// scopeClaim is the scope claim: space-separated (RFC 8693) or an array.
type scopeClaim []string

func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("scope: want a space-separated string or an array of strings")
	}
	*s = list
	return nil
}

// tokenClaims are the claims read from a context token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope scopeClaim `json:"scope,omitempty"`
	// Ctx is the evaluation context.
	Ctx map[string]any `json:"ctx"`
	// Top-level context attributes are a mistake (the context goes in
	// ctx); they are detected to reject the token rather than ignored.
	TopTargetingKey any `json:"targetingKey,omitempty"`
	TopUserID       any `json:"userId,omitempty"`
	TopOrgID        any `json:"orgId,omitempty"`
	TopRole         any `json:"role,omitempty"`
	TopDeviceID     any `json:"deviceId,omitempty"`
	TopDeviceClass  any `json:"deviceClass,omitempty"`
}

// verify checks a raw token: signature (EdDSA, RS256 or ES256 with the key
// of its kid; HS256 only with the configured secret), exp required, not
// expired, lifetime within the maximum, nbf and iat not in the future, and
// a valid ctx claim. The namespace (aud) and scope are checked by the
// caller.
func (a *Authenticator) verify(raw string) (*verifiedToken, error) {
	now := a.now()
	ks := a.keys.Load()
	if a.cache != nil {
		if v := a.cache.get(raw, ks, now); v != nil {
			return v, nil
		}
	}
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("the token is %d bytes, more than %d", len(raw), maxTokenBytes)
	}
	var methods []string
	if ks != nil {
		methods = append(methods, AlgEdDSA, AlgRS256, AlgES256)
	}
	if a.hs256 != nil {
		methods = append(methods, AlgHS256)
	}
	parser := jwt.NewParser(jwt.WithValidMethods(methods), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithJSONNumber())
	claims := new(tokenClaims)
	if _, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Method.Alg() == AlgHS256 {
			return a.hs256, nil
		}
		if ks == nil {
			return nil, errors.New("no public keys")
		}
		kid, _ := t.Header["kid"].(string)
		k, err := ks.lookup(kid)
		if err != nil {
			return nil, err
		}
		if k.Alg != t.Method.Alg() {
			return nil, fmt.Errorf("key %q is a %s key, the token is signed with %s", k.ID, k.Alg, t.Method.Alg())
		}
		return k.Public, nil
	}); err != nil {
		return nil, err
	}
	v, err := a.check(claims, now)
	if err != nil {
		return nil, err
	}
	v.raw, v.keys = raw, ks
	if a.cache != nil {
		a.cache.put(v)
	}
	return v, nil
}

// check validates the claims beyond what the parser checks and builds the
// verified token.
func (a *Authenticator) check(c *tokenClaims, now time.Time) (*verifiedToken, error) {
	exp := c.ExpiresAt.Time
	from := now
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if life := exp.Sub(from); life > a.maxLifetime {
		return nil, fmt.Errorf("the token's lifetime %s (exp - %s) exceeds the maximum %s",
			life.Round(time.Second), map[bool]string{true: "iat", false: "now"}[c.IssuedAt != nil], a.maxLifetime)
	}
	if c.TopTargetingKey != nil || c.TopUserID != nil || c.TopOrgID != nil || c.TopRole != nil ||
		c.TopDeviceID != nil || c.TopDeviceClass != nil {
		return nil, errors.New("context attributes must be inside the ctx claim, not top-level claims")
	}
	ctx, err := evaluator.ContextFromMap(c.Ctx)
	if err != nil {
		return nil, fmt.Errorf("ctx claim: %w", err)
	}
	if ctx.DeviceID != "" && ctx.DeviceClass == "" {
		return nil, errors.New("ctx claim: deviceClass is required with deviceId")
	}
	if ctx.TargetingKey == "" {
		ctx.TargetingKey = ctx.UserID
	}
	return &verifiedToken{ctx: ctx, aud: c.Audience, admin: slices.Contains(c.Scope, ScopeAdmin),
		sync: slices.Contains(c.Scope, ScopeSync), exp: exp}, nil
}

// merge returns the evaluation context of a request bearing v: the
// token's, plus the client-settable attributes of the request's context
// that the token does not set.
func (a *Authenticator) merge(v *verifiedToken, req *evaluator.Context) evaluator.Context {
	ctx := v.ctx
	if len(a.settable) == 0 || len(req.Attributes) == 0 {
		return ctx
	}
	var attrs map[string]any
	for _, name := range a.settable {
		val, ok := req.Attributes[name]
		if !ok {
			continue
		}
		if _, inToken := v.ctx.Attributes[name]; inToken {
			continue
		}
		if attrs == nil {
			// Copy on write: the token's map is shared by the cache.
			attrs = make(map[string]any, len(v.ctx.Attributes)+len(a.settable))
			for k, x := range v.ctx.Attributes {
				attrs[k] = x
			}
		}
		attrs[name] = val
	}
	if attrs != nil {
		ctx.Attributes = attrs
	}
	return ctx
}

// tokenCache holds verified tokens by raw token until their exp. When it
// is full, an arbitrary entry makes room.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*verifiedToken
}

// get returns the entry of raw if it was verified with ks and has not
// expired at now.
func (c *tokenCache) get(raw string, ks *KeySet, now time.Time) *verifiedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.m[raw]
	if v == nil {
		return nil
	}
	if v.keys != ks || !now.Before(v.exp) {
		delete(c.m, raw)
		return nil
	}
	return v
}

func (c *tokenCache) put(v *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[v.raw] = v
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
