package evaluator

import (
	"cmp"
	"encoding/json"
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
			oe.Value = json.RawMessage(e.raw)
		}
		ov.Entries[i] = oe
	}
	return ov
}

func compareObjectRef(a, b ObjectRef) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(string(a.Kind), string(b.Kind)),
		strings.Compare(a.Name, b.Name))
}
