package flagops

import (
	"encoding/json"
	"fmt"

	"github.com/flagops/flagops/sdk/go/internal/link"
)

// Event names of the device stream.
const (
	eventSnapshot = "snapshot"
	eventChanged  = "device.feature-flags.changed"
)

// deviceStream applies the device stream's events to the provider's values.
type deviceStream struct{ p *Provider }

// Apply implements link.Handler.
func (d deviceStream) Apply(ev *link.Event, synced bool) (link.Applied, []string, error) {
	p := d.p
	switch ev.Name {
	case eventSnapshot:
		var s struct {
			Flags map[string]wireFlag `json:"flags"`
		}
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			return 0, nil, fmt.Errorf("%w: snapshot: %w", link.ErrGap, err)
		}
		flags, err := decodeFlags(s.Flags, !p.opts.OmitFlagMetadata)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: snapshot: %w", link.ErrGap, err)
		}
		old := p.vals.Swap(&values{flags: flags})
		var changes []string
		if old != nil {
			changes = diff(old.flags, flags)
		}
		return link.Replaced, changes, nil
	case eventChanged:
		if !synced {
			return 0, nil, fmt.Errorf("%w: a change before the snapshot", link.ErrGap)
		}
		var c struct {
			Changed map[string]wireFlag `json:"changed"`
			Removed []string            `json:"removed"`
		}
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return 0, nil, fmt.Errorf("%w: change: %w", link.ErrGap, err)
		}
		changed, err := decodeFlags(c.Changed, !p.opts.OmitFlagMetadata)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: change: %w", link.ErrGap, err)
		}
		next, keys := p.vals.Load().withChanges(changed, c.Removed)
		p.vals.Store(next)
		return link.Changed, keys, nil
	}
	return link.Ignored, nil, nil // an event this provider does not know
}
