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
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flagops/flagops/internal/flagadmin"
)

// Objects are the flagops objects of a namespace (or of every namespace), as listed.
type Objects = flagadmin.Objects

// Lister reads flagops objects from the cluster.
type Lister = flagadmin.Lister

// loaded is the cluster state loaded into a store, flagEntry one FeatureFlag of it.
type (
	loaded    = flagadmin.Loaded
	flagEntry = flagadmin.FlagEntry
)

// newScheme returns a scheme with the flagops and core types.
func newScheme() *runtime.Scheme { return flagadmin.NewScheme() }

// clientLister is the Lister of a cluster, with the caller's credentials, and its
// EventLister (history.go).
type clientLister struct {
	flagadmin.Lister
	c client.Client
}

// newClient returns a client of the API server of the connection flags.
func newClient(getter genericclioptions.RESTClientGetter) (client.Client, error) {
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return flagadmin.NewClient(cfg)
}

// newClientLister returns a Lister that talks to the API server of the connection flags.
func newClientLister(getter genericclioptions.RESTClientGetter) (Lister, error) {
	c, err := newClient(getter)
	if err != nil {
		return nil, err
	}
	return &clientLister{Lister: flagadmin.NewLister(c), c: c}, nil
}

// load applies objs to a new store whose clock is now, keeping the Syncer's rules (package
// flagadmin).
func load(objs *Objects, now func() time.Time) (*loaded, error) { return flagadmin.Load(objs, now) }

// oneLine joins the non-empty lines of a message with "; ", so that every error and note
// is one line.
func oneLine(s string) string { return flagadmin.OneLine(s) }

// flagNotFound is the error for a key no flag of namespace ns (of any when empty) has.
func flagNotFound(key, ns string) error { return flagadmin.FlagNotFound(key, ns) }
