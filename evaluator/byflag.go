package evaluator

import "strings"

// OverrideCursor is a position in the overrides of one flag: the listing
// continues with the first entry after it in (kind, subject id, object
// name) order. The zero value is the start.
type OverrideCursor struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Name      string      `json:"name"`
}

func (c OverrideCursor) pos() string { return posKey(c.Kind, c.SubjectID, c.Name) }

// posKey encodes (kind, subject, name) as a string that sorts like the
// tuple: each part ends with "\x00\x00", and a NUL inside a part becomes
// "\x00\xff", so a part that is a prefix of another sorts first and no two
// tuples share an encoding.
func posKey(kind SubjectKind, subject, name string) string {
	var b strings.Builder
	b.Grow(len(kind) + len(subject) + len(name) + 6)
	for _, part := range [3]string{string(kind), subject, name} {
		if strings.IndexByte(part, 0) < 0 {
			b.WriteString(part)
		} else {
			b.WriteString(strings.ReplaceAll(part, "\x00", "\x00\xff"))
		}
		b.WriteString("\x00\x00")
	}
	return b.String()
}

// cursorOf returns the position of an entry.
func cursorOf(e *objEntry) OverrideCursor {
	return OverrideCursor{Kind: e.obj.ov.Kind, SubjectID: e.obj.ov.SubjectID, Name: e.obj.ov.Name}
}
