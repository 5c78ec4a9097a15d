package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// Event kinds of GET /v1/sync.
const (
	eventSyncSnapshot = "sync.snapshot"
	eventSyncChanged  = "sync.changed"
)

// newSyncEpoch returns what tells one server's store revisions from any
// other's in sync event IDs.
func newSyncEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func (s *server) syncID(rev uint64) string { return s.syncEpoch + "-" + strconv.FormatUint(rev, 10) }

// syncResumeAt returns the revision a Last-Event-ID of this server names.
func (s *server) syncResumeAt(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, s.syncEpoch+"-")
	if !ok {
		return 0, false
	}
	rev, err := strconv.ParseUint(rest, 10, 64)
	return rev, err == nil
}

// syncStream serves GET /v1/sync (package doc, "Sync stream").
func (s *server) syncStream(w http.ResponseWriter, r *http.Request, ns evaluator.Namespace, _ string) {
	for name := range r.URL.Query() {
		if name != paramLastEventID {
			s.writeError(w, http.StatusBadRequest, "", codeInvalidQuery,
				"unknown query parameter "+strconv.Quote(name)+" (GET /v1/sync takes lastEventId only)")
			return
		}
	}
	if !s.takeSlotOr503(w) {
		return
	}
	defer s.freeSlot()
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get(paramLastEventID)
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	frame := s.retryFrame()

	// Resume where the client is when this process's feed still has
	// every change since; else a snapshot.
	pos, resumable := s.syncResumeAt(lastID)
	snap := s.store.Snapshot()
	if resumable && pos <= snap.Revision() {
		if _, _, ok := s.store.Changes(pos); !ok {
			resumable = false
		}
	}
	if !resumable || pos > snap.Revision() {
		pos = snap.Revision()
		frame = append(frame, s.syncSnapshotFrame(ns.Name(), snap)...)
		s.opts.Metrics.EventSent(eventSyncSnapshot)
	} else {
		// The block without data tells the client where it stands; the
		// changes since, if any, follow.
		frame = append(frame, "id: "+lastID+"\n\n"...)
	}
	if !s.write(w, rc, frame) {
		return
	}

	tick, stop := s.opts.NewTicker(s.opts.Heartbeat)
	defer stop()
	for {
		changes, wake, ok := s.store.Changes(pos)
		snap := s.store.Snapshot() // at the last revision of changes, or later
		var out []byte
		switch {
		case !ok:
			// The feed no longer holds revision pos+1: start over.
			s.opts.Metrics.Overflowed()
			pos = snap.Revision()
			out = s.syncSnapshotFrame(ns.Name(), snap)
		case len(changes) > 0:
			pos = changes[len(changes)-1].Revision
			out = s.syncChangeFrame(ns.Name(), snap, changes, pos)
		}
		if out != nil {
			if !s.write(w, rc, out) {
				return
			}
			s.opts.Metrics.EventSent(eventSyncChanged)
			s.opts.Metrics.Propagation(time.Since(snap.AsOf()))
		}
		if !s.await(w, rc, r, tick, wake) {
			return
		}
	}
}

// syncSnapshotFrame renders namespace ns of snap as a sync.snapshot event.
func (s *server) syncSnapshotFrame(ns string, snap *evaluator.Snapshot) []byte {
	return syncFrame(eventSyncSnapshot, s.syncID(snap.Revision()), snap.Namespace(ns).Data())
}

// syncChangeFrame renders what changes wrote to namespace ns as a
// sync.changed event with the ID of revision pos, taking each flag and
// object as it is in snap (which is at pos or later: a later state is
// sent again with the change that made it), or nil when they wrote
// nothing there.
func (s *server) syncChangeFrame(ns string, snap *evaluator.Snapshot, changes []evaluator.ChangeSet, pos uint64) []byte {
	n := snap.Namespace(ns)
	var ch evaluator.NamespaceChanges
	seenFlag := map[string]bool{}
	seenObj := map[evaluator.ObjectName]bool{}
	for _, cs := range changes {
		for _, f := range cs.Flags {
			if f.Namespace != ns || seenFlag[f.Key] {
				continue
			}
			seenFlag[f.Key] = true
			if spec, ok := n.FlagSpec(f.Key); ok {
				if ch.Flags == nil {
					ch.Flags = map[string]evaluator.FlagSpec{}
				}
				ch.Flags[f.Key] = spec
			} else {
				ch.DeletedFlags = append(ch.DeletedFlags, f.Key)
			}
		}
		for _, o := range cs.Overrides {
			ref := evaluator.ObjectName{Kind: o.Kind, Name: o.Name}
			if o.Namespace != ns || seenObj[ref] {
				continue
			}
			seenObj[ref] = true
			if ov, ok := n.Override(o.Kind, o.Name); ok {
				ch.Overrides = append(ch.Overrides, ov)
			} else {
				ch.DeletedOverrides = append(ch.DeletedOverrides, ref)
			}
		}
	}
	if len(seenFlag) == 0 && len(seenObj) == 0 {
		return nil
	}
	return syncFrame(eventSyncChanged, s.syncID(pos), ch)
}

func syncFrame(event, id string, data any) []byte {
	b, err := json.Marshal(data)
	if err != nil {
		// A raw value that is not JSON (the store keeps it, never serving
		// it): send what evaluates alike.
		b, err = json.Marshal(wireSafe(data))
		if err != nil {
			panic("encoding a sync event: " + err.Error())
		}
	}
	out := make([]byte, 0, len(b)+len(event)+len(id)+24)
	out = append(out, "id: "+id+"\nevent: "+event+"\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// specNotJSON is the type sent for a flag whose spec holds a raw value
// that is not JSON: like the flag, it does not compile.
const specNotJSON evaluator.FlagType = "not valid JSON (a value of the flag's spec is not JSON)"

// wireSafe returns data (an evaluator.NamespaceData or NamespaceChanges) with each flag whose
// spec holds a raw value that is not JSON replaced by a spec of type
// specNotJSON, and without the override entries whose value is not JSON.
// Neither is ever served, so the result evaluates as data does.
func wireSafe(data any) any {
	safeFlags := func(m map[string]evaluator.FlagSpec) {
		for k, spec := range m {
			if _, err := json.Marshal(spec); err != nil {
				m[k] = evaluator.FlagSpec{Type: specNotJSON}
			}
		}
	}
	safeOverrides := func(ovs []evaluator.Override) {
		for i := range ovs {
			kept := ovs[i].Entries[:0:0]
			for _, e := range ovs[i].Entries {
				if len(e.Value) == 0 || json.Valid(e.Value) {
					kept = append(kept, e)
				}
			}
			ovs[i].Entries = kept
		}
	}
	switch d := data.(type) {
	case evaluator.NamespaceData:
		safeFlags(d.Flags)
		safeOverrides(d.Overrides)
	case evaluator.NamespaceChanges:
		safeFlags(d.Flags)
		safeOverrides(d.Overrides)
	}
	return data
}
