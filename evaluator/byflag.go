package evaluator

import (
	"cmp"
	"strings"
)

// OverrideCursor is a position in the overrides of one flag: the listing
// continues with the first entry after it in (kind, subject id, object
// name) order. The zero value is the start.
type OverrideCursor struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Name      string      `json:"name"`
}

// compare orders cursors by (kind, subject id, object name).
func (c OverrideCursor) compare(d OverrideCursor) int {
	return cmp.Or(strings.Compare(string(c.Kind), string(d.Kind)), strings.Compare(c.SubjectID, d.SubjectID), strings.Compare(c.Name, d.Name))
}

// cursorOf returns the position of an entry.
func cursorOf(e *objEntry) OverrideCursor {
	return OverrideCursor{Kind: e.obj.ov.Kind, SubjectID: e.obj.ov.SubjectID, Name: e.obj.ov.Name}
}
