package evaluator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// What a namespace holds, as given to the store: a copy of it (Apply of
// UpsertFlag and UpsertOverride to another store) evaluates every context
// as this one does. The evaluator's sync stream sends it to in-process
// providers.

// FlagSpec returns the spec a flag of the namespace was stored with, also
// when it did not compile. The spec shares memory with the store and must
// not be modified.
func (n Namespace) FlagSpec(key string) (FlagSpec, bool) {
	if n.st == nil {
		return FlagSpec{}, false
	}
	fe := n.st.flags[key]
	if fe == nil {
		return FlagSpec{}, false
	}
	return fe.spec, true
}

// FlagSpecs returns the specs of every flag of the namespace, by key.
func (n Namespace) FlagSpecs() map[string]FlagSpec {
	if n.st == nil {
		return map[string]FlagSpec{}
	}
	out := make(map[string]FlagSpec, len(n.st.flags))
	for k, fe := range n.st.flags {
		out[k] = fe.spec
	}
	return out
}

// Override returns an override object of the namespace. Its entries are
// the ones the store keeps: the first entry per key, an entry that serves
// the on value without Enabled, one that serves the off value with Enabled
// false and without its value.
func (n Namespace) Override(kind SubjectKind, name string) (Override, bool) {
	if n.st == nil {
		return Override{}, false
	}
	obj := n.st.object(kind, name)
	if obj == nil {
		return Override{}, false
	}
	return obj.given(), true
}

// Overrides returns every override object of the namespace (see Override),
// sorted by kind and name.
func (n Namespace) Overrides() []Override {
	if n.st == nil {
		return nil
	}
	out := make([]Override, 0, n.st.numObjs)
	n.st.objs.each(func(sh *objShard) {
		for _, obj := range sh.m {
			out = append(out, obj.given())
		}
	})
	slices.SortFunc(out, func(a, b Override) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Name, b.Name))
	})
	return out
}

// given rebuilds the Override an object was stored from.
func (o *overrideObj) given() Override {
	ov := o.ov
	if ov.ExpiresAt != nil {
		at := *ov.ExpiresAt
		ov.ExpiresAt = &at
	}
	ov.Entries = make([]OverrideEntry, len(o.entries))
	for i := range o.entries {
		e := &o.entries[i]
		oe := OverrideEntry{Key: e.key}
		switch e.mode {
		case modeOff:
			off := false
			oe.Enabled = &off
		case modeValue:
			oe.Value = json.RawMessage(e.val.raw)
		}
		ov.Entries[i] = oe
	}
	return ov
}

func compareObjectRef(a, b ObjectRef) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(string(a.Kind), string(b.Kind)),
		strings.Compare(a.Name, b.Name))
}

// NamespaceData is everything a namespace holds, as given to the store (FlagSpecs,
// Overrides): in JSON, the data of the evaluator's sync.snapshot event.
type NamespaceData struct {
	Namespace string              `json:"namespace"`
	Flags     map[string]FlagSpec `json:"flags"`
	Overrides []Override          `json:"overrides"`
}

// NamespaceChanges is what writes did to a namespace: the flags and override objects
// they touched, as they are now, and those they deleted. In JSON, the data of the
// evaluator's sync.changed event.
type NamespaceChanges struct {
	Flags            map[string]FlagSpec `json:"flags,omitempty"`
	DeletedFlags     []string            `json:"deletedFlags,omitempty"`
	Overrides        []Override          `json:"overrides,omitempty"`
	DeletedOverrides []ObjectName        `json:"deletedOverrides,omitempty"`
}

// ObjectName names an override object within its namespace.
type ObjectName struct {
	Kind SubjectKind `json:"kind"`
	Name string      `json:"name"`
}

// Data returns what the namespace holds.
func (n Namespace) Data() NamespaceData {
	ovs := n.Overrides()
	if ovs == nil {
		ovs = []Override{}
	}
	return NamespaceData{Namespace: n.name, Flags: n.FlagSpecs(), Overrides: ovs}
}

// Ops returns the writes that make a store holding snap hold d (and nothing in other
// namespaces): delete what d lacks, upsert what differs. Writing again what is
// held would list every key in the change set.
func (d *NamespaceData) Ops(snap *Snapshot) []Op {
	var ops []Op
	held := map[ObjectName][]byte{} // d.Namespace's objects, as JSON
	want := maps.Clone(d.Flags)
	for _, ns := range snap.Namespaces() {
		cur := snap.Namespace(ns)
		for k, spec := range cur.FlagSpecs() {
			if w, ok := want[k]; !ok || ns != d.Namespace {
				ops = append(ops, DeleteFlag(ns, k))
			} else if sameJSON(spec, w) {
				delete(want, k)
			}
		}
		for _, o := range cur.Overrides() {
			if ns != d.Namespace {
				ops = append(ops, DeleteOverride(o.Kind, ns, o.Name))
				continue
			}
			held[ObjectName{o.Kind, o.Name}], _ = json.Marshal(o)
		}
	}
	for k, spec := range want {
		ops = append(ops, UpsertFlag(d.Namespace, k, spec))
	}
	for _, o := range d.Overrides {
		o.Namespace = d.Namespace
		name := ObjectName{o.Kind, o.Name}
		old, ok := held[name]
		delete(held, name)
		if !ok || !sameJSON(json.RawMessage(old), o) {
			ops = append(ops, UpsertOverride(o))
		}
	}
	for name := range held {
		ops = append(ops, DeleteOverride(name.Kind, d.Namespace, name.Name))
	}
	return ops
}

// Ops returns the writes of c to namespace ns.
func (c *NamespaceChanges) Ops(ns string) []Op {
	var ops []Op
	for k, spec := range c.Flags {
		ops = append(ops, UpsertFlag(ns, k, spec))
	}
	for _, k := range c.DeletedFlags {
		ops = append(ops, DeleteFlag(ns, k))
	}
	for _, o := range c.Overrides {
		o.Namespace = ns
		ops = append(ops, UpsertOverride(o))
	}
	for _, o := range c.DeletedOverrides {
		ops = append(ops, DeleteOverride(o.Kind, ns, o.Name))
	}
	return ops
}

// sameJSON reports whether a and b have the same JSON encoding; never when either
// has none.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
