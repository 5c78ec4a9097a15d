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

// Package auditevent is the format of the Kubernetes Event that the manager records for each
// audited change (a create, an update or a delete of a flag or an override): its reason and
// its note. The manager formats notes with Format and kubectl flagops history parses them
// with Parse, so that the two cannot drift apart.
//
// A note is one line of at most NoteLimit bytes (the API server's limit):
//
//	flag beta.dashboard gen 3 by alice: {"enabled":false} -> {"enabled":true} [record 5f0c…]
//	user alice gen 2 by kubectl-edit (unverified, claimed mallory): {} -> {"beta":{"value":true}} [record …]
//	flag beta.dashboard gen 2-4 by unknown (coalesced, writers tool-c,tool-a): {…} -> {…} [record …]
//	flag beta.dashboard gen 5 by alice via "PUT /flags/{name}" from 203.0.113.7 using "Mozilla/5.0 …": {…} -> {…} [record …]
//
// that is: the subject (the flag's key, or the user or device of an override), the
// generation (a range for a record that covers versions no leader saw one by one), the actor,
// verified unless it says otherwise, the console's request when the record has one (its
// route after "via", source IP after "from", user agent after "using", each only when
// known), then the changed keys with their values before and after, as two JSON objects in
// which a key that is absent on one side is left out. Values are compact JSON with <, > and
// & escaped, so a raw "<" never occurs in a value.
//
// A note that would be longer than NoteLimit is shortened: the largest values are replaced,
// one at a time, by the string "<N bytes>" (N is the value's length), then, if that is not
// enough, the last keys are left out; the tail then says so and where the whole record is:
//
//	… [truncated, 3 more keys; full record 5f0c… in the audit sink]
//
// Words (the subject, the actor, the writers, the request's parts, the record ID) are
// written as they are when they consist of letters, digits and ._:@/+- only, and as JSON
// strings otherwise; a word longer than its bound is cut and ends with "…".
package auditevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// NoteLimit is the API server's limit on an Event's note, in bytes.
const NoteLimit = 1024

// Bounds of the words of a note, as written. They keep the part of a note before the values
// well under NoteLimit, so that there is always room for the tail.
const (
	maxSubject = 253
	maxWord    = 64
	maxWriters = 4
	// maxRequestText bounds a request's route and user agent. A note with a request has no
	// writers, which leaves room for them.
	maxRequestText = 128
)

// The subject kinds: the first word of a note.
const (
	SubjectFlag   = "flag"
	SubjectUser   = "user"
	SubjectDevice = "device"
)

// Actor is who made a change, as the audit record names it.
type Actor struct {
	Username string `json:"username"`
	// Verified is true when the webhook's signed stamp verified, or the manager made the
	// change; otherwise Username is only a hint (a field manager).
	Verified bool `json:"verified"`
	// Claimed is the unverified name an annotation claimed, if any.
	Claimed string `json:"claimed,omitempty"`
}

// Request is the console request through which a change was made, as the audit record
// names it. Each field is empty when unknown.
type Request struct {
	Route     string `json:"route,omitempty"`
	SourceIP  string `json:"sourceIP,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
}

// Note is what an audited change's Event says.
type Note struct {
	// SubjectKind is SubjectFlag, SubjectUser or SubjectDevice, and Subject the flag's key,
	// the user's or the device's ID.
	SubjectKind string `json:"subjectKind"`
	Subject     string `json:"subject"`
	// Generation is the object's metadata.generation the record describes. FromGeneration,
	// when not zero, is the first of a range of versions that one coalesced record covers.
	Generation     int64 `json:"generation"`
	FromGeneration int64 `json:"fromGeneration,omitempty"`
	Actor          Actor `json:"actor"`
	// Writers are, for a coalesced record, who is known to have written in its range;
	// MoreWriters counts those left out.
	Writers     []string `json:"writers,omitempty"`
	MoreWriters int      `json:"moreWriters,omitempty"`
	// Request is the console's request of a change made through the console, or nil. A
	// coalesced record has none, and Format leaves it out of a coalesced note.
	Request *Request `json:"request,omitempty"`
	// Keys are the changed keys the note shows, sorted. Before and After hold each one's
	// JSON value (null when absent on that side); a value replaced by its length is a JSON
	// string that starts with "<" (see IsCut).
	Keys   []string                   `json:"keys"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	// Truncated says the note was shortened; MoreKeys changed keys were left out.
	Truncated bool `json:"truncated,omitempty"`
	MoreKeys  int  `json:"moreKeys,omitempty"`
	// RecordID is the audit record's ID, under which the sink has the whole record.
	RecordID string `json:"recordID"`
}

// Coalesced reports whether the note is about a record that covers several versions.
func (n *Note) Coalesced() bool { return n.FromGeneration != 0 }

// Reason returns the Event reason of an audit action ("flag.updated",
// "user_override.deleted", …), or "" for an action that has no Event of this kind.
func Reason(action string) string {
	kind, verb, _ := strings.Cut(action, ".")
	flag := kind == "flag"
	if !flag && kind != "user_override" && kind != "device_override" {
		return ""
	}
	switch {
	case verb == "created" && flag:
		return v1.EventReasonFlagCreated
	case verb == "updated" && flag:
		return v1.EventReasonFlagUpdated
	case verb == "deleted" && flag:
		return v1.EventReasonFlagDeleted
	case verb == "created":
		return v1.EventReasonOverrideCreated
	case verb == "updated":
		return v1.EventReasonOverrideUpdated
	case verb == "deleted":
		return v1.EventReasonOverrideDeleted
	}
	return ""
}

// IsChangeReason reports whether reason is one of the reasons Reason returns.
func IsChangeReason(reason string) bool {
	switch reason {
	case v1.EventReasonFlagCreated, v1.EventReasonFlagUpdated, v1.EventReasonFlagDeleted,
		v1.EventReasonOverrideCreated, v1.EventReasonOverrideUpdated, v1.EventReasonOverrideDeleted:
		return true
	}
	return false
}

// SubjectKindOf returns the subject kind of an audit action: SubjectFlag for "flag.*",
// SubjectUser for "user_override.*", SubjectDevice for "device_override.*", or "".
func SubjectKindOf(action string) string {
	switch kind, _, _ := strings.Cut(action, "."); kind {
	case "flag":
		return SubjectFlag
	case "user_override":
		return SubjectUser
	case "device_override":
		return SubjectDevice
	}
	return ""
}

// IsCut reports whether v is a value that a shortened note replaced by its length.
func IsCut(v json.RawMessage) bool { return bytes.HasPrefix(v, []byte(`"<`)) }

// Format returns the note of n, at most NoteLimit bytes long. n.Keys is ignored: the keys
// are those of Before and After. n.Truncated and n.MoreKeys are set by Format, not read.
func Format(n Note) string {
	head := header(n)
	keys := unionKeys(n.Before, n.After)
	vals := make([][2]string, len(keys))
	for i, k := range keys {
		vals[i] = [2]string{value(n.Before[k]), value(n.After[k])}
	}
	id := word(n.RecordID, maxWord)
	full := head + objects(keys, vals) + " [record " + id + "]"
	if len(full) <= NoteLimit {
		return full
	}
	tail := func(more int) string {
		s := " [truncated"
		if more > 0 {
			s += ", " + strconv.Itoa(more) + " more keys"
		}
		return s + "; full record " + id + " in the audit sink]"
	}
	room := NoteLimit - len(head) - len(tail(len(keys)))
	size := len(objects(keys, vals))
	// Replace the largest values first, while that makes the note shorter.
	for size > room {
		side, at, longest := 0, -1, 0
		for i := range vals {
			for s := range 2 {
				if l := len(vals[i][s]); l > longest {
					side, at, longest = s, i, l
				}
			}
		}
		cut := `"<` + strconv.Itoa(longest) + ` bytes>"`
		if at < 0 || len(cut) >= longest {
			break
		}
		vals[at][side] = cut
		size -= longest - len(cut)
	}
	// Then leave out the last keys.
	more := 0
	for size > room && len(keys) > 0 {
		keys, vals = keys[:len(keys)-1], vals[:len(vals)-1]
		more++
		size = len(objects(keys, vals))
	}
	return head + objects(keys, vals) + tail(more)
}

// header returns the note up to the values: "flag KEY gen N by ACTOR (…): ".
func header(n Note) string {
	var b strings.Builder
	b.WriteString(cmpOr(n.SubjectKind, "object"))
	b.WriteString(" ")
	b.WriteString(word(n.Subject, maxSubject))
	b.WriteString(" gen ")
	if n.FromGeneration != 0 {
		b.WriteString(strconv.FormatInt(n.FromGeneration, 10) + "-")
	}
	b.WriteString(strconv.FormatInt(n.Generation, 10))
	b.WriteString(" by ")
	b.WriteString(word(n.Actor.Username, maxWord))
	switch {
	case n.FromGeneration != 0:
		b.WriteString(" (coalesced, writers ")
		shown := n.Writers[:min(len(n.Writers), maxWriters)]
		for i, w := range shown {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(word(w, maxWord))
		}
		if more := len(n.Writers) - len(shown) + n.MoreWriters; more > 0 {
			b.WriteString(" +" + strconv.Itoa(more))
		}
		b.WriteString(")")
	case !n.Actor.Verified:
		b.WriteString(" (unverified")
		if n.Actor.Claimed != "" {
			b.WriteString(", claimed " + word(n.Actor.Claimed, maxWord))
		}
		b.WriteString(")")
	}
	if r := n.Request; r != nil && n.FromGeneration == 0 {
		for _, part := range []struct {
			lead, text string
			limit      int
		}{{" via ", r.Route, maxRequestText}, {" from ", r.SourceIP, maxWord}, {" using ", r.UserAgent, maxRequestText}} {
			if part.text != "" {
				b.WriteString(part.lead + word(part.text, part.limit))
			}
		}
	}
	b.WriteString(": ")
	return b.String()
}

// objects returns `{BEFORE} -> {AFTER}`, leaving out the values that are "" (absent).
func objects(keys []string, vals [][2]string) string {
	var b strings.Builder
	for side := range 2 {
		if side == 1 {
			b.WriteString(" -> ")
		}
		b.WriteString("{")
		first := true
		for i, k := range keys {
			if vals[i][side] == "" {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			b.WriteString(jsonString(k))
			b.WriteString(":")
			b.WriteString(vals[i][side])
		}
		b.WriteString("}")
	}
	return b.String()
}

// value returns v as compact JSON with <, > and & escaped, or "" when v is absent or null.
func value(v json.RawMessage) string {
	if len(bytes.TrimSpace(v)) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		// Not JSON: kept as a string, so that the note stays parseable.
		return jsonString(string(v))
	}
	if b.String() == "null" {
		return ""
	}
	var out bytes.Buffer
	json.HTMLEscape(&out, b.Bytes())
	return out.String()
}

func unionKeys(a, b map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(a)+len(b))
	for _, m := range []map[string]json.RawMessage{a, b} {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// bare reports whether s can be written without quotes. A bare word does not end with ":",
// which would run into the ": " after the actor.
func bare(s string) bool {
	if s == "" || strings.HasSuffix(s, ":") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:@/+-", r)) {
			return false
		}
	}
	return true
}

// word writes s as it is or as a JSON string, cut so that it takes at most limit bytes.
func word(s string, limit int) string {
	w := s
	if !bare(s) {
		w = jsonString(s)
	}
	for len(w) > limit && s != "" {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
		w = jsonString(strings.TrimSuffix(s, "…") + "…")
	}
	return w
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	_ = enc.Encode(s) // a string always encodes; HTML is escaped
	return strings.TrimSuffix(b.String(), "\n")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ErrNotANote is returned, wrapped, by Parse for text that is not a note Format wrote.
var ErrNotANote = errors.New("not an audited change's note")

// Parse reads a note that Format wrote. Keys, Before and After hold every key the note
// shows, with null for a side where it is absent.
func Parse(note string) (Note, error) {
	p := &parser{s: note}
	n, err := p.note()
	if err != nil {
		return Note{}, fmt.Errorf("%w: %w at byte %d", ErrNotANote, err, p.i)
	}
	return n, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) note() (Note, error) {
	var n Note
	var err error
	if n.SubjectKind, err = p.word(); err != nil {
		return n, err
	}
	if n.SubjectKind != SubjectFlag && n.SubjectKind != SubjectUser && n.SubjectKind != SubjectDevice {
		return n, fmt.Errorf("unknown subject kind %q", n.SubjectKind)
	}
	if err := p.lit(" "); err != nil {
		return n, err
	}
	if n.Subject, err = p.word(); err != nil {
		return n, err
	}
	if err := p.lit(" gen "); err != nil {
		return n, err
	}
	if n.Generation, err = p.int(); err != nil {
		return n, err
	}
	if p.maybe("-") {
		n.FromGeneration = n.Generation
		if n.Generation, err = p.int(); err != nil {
			return n, err
		}
	}
	if err := p.lit(" by "); err != nil {
		return n, err
	}
	if n.Actor.Username, err = p.word(); err != nil {
		return n, err
	}
	n.Actor.Verified = true
	switch {
	case p.maybe(" (coalesced, writers "):
		n.Actor.Verified = false
		for {
			w, err := p.word()
			if err != nil {
				return n, err
			}
			n.Writers = append(n.Writers, w)
			if !p.maybe(",") {
				break
			}
		}
		if p.maybe(" +") {
			m, err := p.int()
			if err != nil {
				return n, err
			}
			n.MoreWriters = int(m)
		}
		if err := p.lit(")"); err != nil {
			return n, err
		}
	case p.maybe(" (unverified"):
		n.Actor.Verified = false
		if p.maybe(", claimed ") {
			if n.Actor.Claimed, err = p.word(); err != nil {
				return n, err
			}
		}
		if err := p.lit(")"); err != nil {
			return n, err
		}
	}
	var r Request
	for _, part := range []struct {
		lead string
		text *string
	}{{" via ", &r.Route}, {" from ", &r.SourceIP}, {" using ", &r.UserAgent}} {
		if p.maybe(part.lead) {
			if *part.text, err = p.word(); err != nil {
				return n, err
			}
		}
	}
	if r != (Request{}) {
		n.Request = &r
	}
	if err := p.lit(": "); err != nil {
		return n, err
	}
	before, err := p.object()
	if err != nil {
		return n, err
	}
	if err := p.lit(" -> "); err != nil {
		return n, err
	}
	after, err := p.object()
	if err != nil {
		return n, err
	}
	n.Keys = unionKeys(before, after)
	n.Before, n.After = make(map[string]json.RawMessage, len(n.Keys)), make(map[string]json.RawMessage, len(n.Keys))
	for _, k := range n.Keys {
		n.Before[k], n.After[k] = orNull(before[k]), orNull(after[k])
	}
	switch {
	case p.maybe(" [record "):
		if n.RecordID, err = p.word(); err != nil {
			return n, err
		}
	case p.maybe(" [truncated"):
		n.Truncated = true
		if p.maybe(", ") {
			m, err := p.int()
			if err != nil {
				return n, err
			}
			n.MoreKeys = int(m)
			if err := p.lit(" more keys"); err != nil {
				return n, err
			}
		}
		if err := p.lit("; full record "); err != nil {
			return n, err
		}
		if n.RecordID, err = p.word(); err != nil {
			return n, err
		}
		if err := p.lit(" in the audit sink"); err != nil {
			return n, err
		}
	default:
		return n, errors.New(`want " [record" or " [truncated"`)
	}
	if err := p.lit("]"); err != nil {
		return n, err
	}
	if p.i != len(p.s) {
		return n, errors.New("trailing text")
	}
	return n, nil
}

func orNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

func (p *parser) maybe(lit string) bool {
	if strings.HasPrefix(p.s[p.i:], lit) {
		p.i += len(lit)
		return true
	}
	return false
}

func (p *parser) lit(lit string) error {
	if !p.maybe(lit) {
		return fmt.Errorf("want %q", lit)
	}
	return nil
}

func (p *parser) int() (int64, error) {
	j := p.i
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a number: %w", err)
	}
	p.i = j
	return v, nil
}

// word reads a bare word or a JSON string.
func (p *parser) word() (string, error) {
	if strings.HasPrefix(p.s[p.i:], `"`) {
		dec := json.NewDecoder(strings.NewReader(p.s[p.i:]))
		var s string
		if err := dec.Decode(&s); err != nil {
			return "", fmt.Errorf("want a JSON string: %w", err)
		}
		p.i += int(dec.InputOffset())
		return s, nil
	}
	j := p.i
	for j < len(p.s) && bare(p.s[j:j+1]) || j < len(p.s) && p.s[j] == ':' {
		j++
	}
	for j > p.i && p.s[j-1] == ':' {
		j-- // the ": " after the word
	}
	if j == p.i {
		return "", errors.New("want a word")
	}
	w := p.s[p.i:j]
	p.i = j
	return w, nil
}

// object reads a JSON object, keeping its values as they are written.
func (p *parser) object() (map[string]json.RawMessage, error) {
	if !strings.HasPrefix(p.s[p.i:], "{") {
		return nil, errors.New("want a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(p.s[p.i:]))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	p.i += int(dec.InputOffset())
	return m, nil
}
