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
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/flagops/flagops/evaluator/server"
)

// Flag names of deviceAccess, for messages.
const (
	flagKeysFile       = "--context-token-keys-file"
	flagHS256File      = "--context-token-hs256-secret-file"
	flagMaxLifetime    = "--context-token-max-lifetime"
	flagSettable       = "--client-settable-attributes"
	flagInsecureNoAuth = "--insecure-no-auth"
)

// defaultKeysPoll is how often the keys file is read for changes.
const defaultKeysPoll = 2 * time.Second

// deviceAccess holds the flags guarding the evaluator's device-facing routes, shared by
// every mode that serves the evaluator: bind adds the flags, load checks them and reads the
// keys, start warns when serving is open and reloads the keys file while the server runs.
type deviceAccess struct {
	keysFile       string
	hs256File      string
	maxLifetime    time.Duration
	settable       string
	insecureNoAuth bool
	corsOrigins    string
	// keysPoll is the reload interval of keysFile; 0 means defaultKeysPoll.
	keysPoll time.Duration

	// Set by load.
	auth     *server.Authenticator // nil: serving is open
	keysData []byte                // the keys file's content behind auth's keys
	origins  []string
}

func (d *deviceAccess) bind(fs *flag.FlagSet) {
	fs.StringVar(&d.keysFile, "context-token-keys-file", "",
		"File of the public keys that verify context tokens: a JWKS (JSON) or PEM public keys, EdDSA (Ed25519), RS256 (RSA, 2048 bits or more) or ES256 (P-256), several selected by kid. It is re-read every 2s, so keys rotate without a restart. Every device-facing route then needs a token; see docs/security.md.")
	fs.StringVar(&d.hs256File, "context-token-hs256-secret-file", "",
		"Opt-in: file holding an HS256 secret (at least 32 bytes, surrounding whitespace trimmed) that also verifies context tokens. Whoever holds it can mint tokens; prefer --context-token-keys-file.")
	fs.DurationVar(&d.maxLifetime, "context-token-max-lifetime", server.DefaultMaxTokenLifetime,
		"Longest lifetime of a context token (exp - iat, or exp - now without iat); longer-lived tokens are refused.")
	fs.StringVar(&d.settable, "client-settable-attributes", "",
		"Comma-separated free context attributes a request may set when its token does not (for example appVersion). Every other attribute comes from the token only. A rule or rollout.bucketBy on one of them can be steered by the client.")
	fs.BoolVar(&d.insecureNoAuth, "insecure-no-auth", false,
		"Serve the evaluator without authentication: anyone who reaches it reads every flag and every user's overrides. Without keys, manager (with the evaluator on) and sidecar refuse to start unless this is set.")
	fs.Func("context-token-key-file", "Removed: use "+flagKeysFile+" (public keys) or "+flagHS256File+" (an HS256 secret of at least 32 bytes).",
		func(string) error {
			return fmt.Errorf("removed: use %s with a JWKS or PEM public key, or %s for an HS256 secret", flagKeysFile, flagHS256File)
		})
	fs.StringVar(&d.corsOrigins, "cors-allowed-origins", "",
		"Comma-separated origins browsers may call the evaluator from, or * for any. Empty disables CORS.")
}

// errNoKeys is returned by load in a cluster mode without keys or --insecure-no-auth.
var errNoKeys = errors.New("no context-token keys: the evaluator would serve every flag and override of its namespaces to anyone who reaches it. " +
	"Set " + flagKeysFile + " (JWKS or PEM public keys) or " + flagHS256File + ", or pass " + flagInsecureNoAuth + " to serve without authentication")

// load checks the flags and reads the keys. clusterMode is true for the modes that serve
// devices in a cluster (the manager with its evaluator on, the sidecar, the evaluator):
// there, serving without keys needs --insecure-no-auth. serve --dir passes false: it is a
// development tool and stays open without keys.
func (d *deviceAccess) load(clusterMode bool) error {
	if err := d.loadOrigins(); err != nil {
		return err
	}
	if d.maxLifetime <= 0 {
		return fmt.Errorf("%s: %s is not positive", flagMaxLifetime, d.maxLifetime)
	}
	d.auth = nil
	hasKeys := d.keysFile != "" || d.hs256File != ""
	switch {
	case hasKeys && d.insecureNoAuth:
		return fmt.Errorf("%s contradicts %s or %s: drop one", flagInsecureNoAuth, flagKeysFile, flagHS256File)
	case !hasKeys && clusterMode && !d.insecureNoAuth:
		return errNoKeys
	case !hasKeys:
		return nil
	}
	opts := server.AuthOptions{MaxLifetime: d.maxLifetime}
	if d.keysFile != "" {
		data, ks, err := readKeys(d.keysFile)
		if err != nil {
			return fmt.Errorf("%s: %w", flagKeysFile, err)
		}
		opts.Keys, d.keysData = ks, data
	}
	if d.hs256File != "" {
		b, err := os.ReadFile(d.hs256File)
		if err != nil {
			return fmt.Errorf("%s: %w", flagHS256File, err)
		}
		secret := bytes.TrimSpace(b)
		if len(secret) < server.MinHS256SecretBytes {
			return fmt.Errorf("%s: the secret in %s is %d bytes; HS256 needs at least %d (for example: head -c 32 /dev/urandom | base64)",
				flagHS256File, d.hs256File, len(secret), server.MinHS256SecretBytes)
		}
		opts.HS256Secret = secret
	}
	if strings.TrimSpace(d.settable) != "" {
		for a := range strings.SplitSeq(d.settable, ",") {
			if a = strings.TrimSpace(a); a == "" {
				return fmt.Errorf("%s: empty attribute name in %q", flagSettable, d.settable)
			}
			opts.ClientSettable = append(opts.ClientSettable, a)
		}
	}
	auth, err := server.NewAuthenticator(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", flagSettable, err)
	}
	d.auth = auth
	return nil
}

func (d *deviceAccess) loadOrigins() error {
	d.origins = nil
	if strings.TrimSpace(d.corsOrigins) == "" {
		return nil
	}
	for o := range strings.SplitSeq(d.corsOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			return fmt.Errorf("--cors-allowed-origins: empty origin in %q", d.corsOrigins)
		}
		d.origins = append(d.origins, o)
	}
	return nil
}

func readKeys(path string) ([]byte, *server.KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	ks, err := server.ParseKeySet(data)
	if err != nil {
		return data, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, ks, nil
}

// start runs with the evaluator server until ctx ends: it logs a warning when serving is
// open, and re-reads the keys file every keysPoll, replacing the keys when its content
// changed and parses; a file that does not parse is logged once and the keys in use stay.
func (d *deviceAccess) start(ctx context.Context, log logr.Logger) {
	if d.auth == nil {
		why := "no " + flagKeysFile
		if d.insecureNoAuth {
			why = flagInsecureNoAuth
		}
		log.Info("WARNING: serving the evaluator WITHOUT AUTHENTICATION ("+why+"): anyone who reaches it reads every flag, every user's and device's overrides and the rule traces",
			"insecureNoAuth", d.insecureNoAuth)
		return
	}
	if ks := d.auth.Keys(); ks != nil {
		log.Info("Verifying context tokens", "keysFile", d.keysFile, "kids", ks.IDs(), "hs256", d.hs256File != "", "maxLifetime", d.maxLifetime.String())
	} else {
		log.Info("Verifying context tokens with HS256 only", "maxLifetime", d.maxLifetime.String())
	}
	if d.keysFile == "" {
		return
	}
	every := d.keysPoll
	if every <= 0 {
		every = defaultKeysPoll
	}
	go d.watchKeys(ctx, every, log)
}

func (d *deviceAccess) watchKeys(ctx context.Context, every time.Duration, log logr.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last, lastErr := d.keysData, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		data, ks, err := readKeys(d.keysFile)
		switch {
		case err != nil:
			// Keep last: a file restored to the keys in use needs no reload.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				log.Error(err, "Unable to reload the context-token keys; the keys in use stay", "file", d.keysFile)
			}
		case !bytes.Equal(data, last):
			last, lastErr = data, ""
			d.auth.SetKeys(ks)
			log.Info("Reloaded the context-token keys", "file", d.keysFile, "kids", ks.IDs())
		}
	}
}
