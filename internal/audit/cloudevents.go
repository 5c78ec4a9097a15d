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

package audit

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Media types of the HTTP sink's request bodies.
const (
	// EventContentType is a request holding one CloudEvent in structured JSON mode.
	EventContentType = event.ApplicationCloudEventsJSON
	// BatchContentType is a request holding a JSON array of CloudEvents (Options.EventBatch).
	BatchContentType = event.ApplicationCloudEventsBatchJSON
)

// EventTypePrefix starts the CloudEvents type of every record: the type is the prefix
// followed by the record's action, e.g. dev.flagops.audit.flag.updated.
const EventTypePrefix = "dev.flagops.audit."

// DefaultEventSource is the default of Options.EventSource (--audit-event-source).
const DefaultEventSource = "flagops.dev/manager"

// EventSourceFlag is the command-line flag that sets Options.EventSource; errors name it.
const EventSourceFlag = "--audit-event-source"

// CheckEventSource checks that source can start the CloudEvents source attribute: a
// non-empty URI reference without query or fragment (the namespace is appended as a path
// segment).
func CheckEventSource(source string) error {
	if strings.TrimSpace(source) == "" {
		return fmt.Errorf("%s: empty source; use a URI reference such as %q", EventSourceFlag, DefaultEventSource)
	}
	u, err := url.Parse(source)
	if err != nil {
		return fmt.Errorf("%s %q: not a URI reference: %w", EventSourceFlag, source, err)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%s %q: has a query or fragment; the namespace is appended as a path segment", EventSourceFlag, source)
	}
	return nil
}

// NewEvent returns the CloudEvent of a record, as the HTTP sink sends it:
//
//	id               the record id (deterministic, so receivers can drop duplicates)
//	source           <source>/<namespace of the object>
//	type             EventTypePrefix + action, e.g. dev.flagops.audit.flag.updated
//	subject          <kind>/<namespace>/<name> of the object
//	time             the record time
//	datacontenttype  application/json
//	data             the record, exactly as the stdout and file sinks write it
//
// The error wraps ErrInvalidRecord if the record is invalid.
func NewEvent(r Record, source string) (event.Event, error) {
	payload, err := r.encode()
	if err != nil {
		return event.Event{}, err
	}
	return recordEvent(r, payload, source)
}

// eventFromPayload returns the CloudEvent of a spooled record.
func eventFromPayload(payload []byte, source string) (event.Event, error) {
	var r Record
	if err := r.UnmarshalJSON(payload); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return recordEvent(r, payload, source)
}

func recordEvent(r Record, payload []byte, source string) (event.Event, error) {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(r.ID)
	e.SetSource(strings.TrimSuffix(source, "/") + "/" + url.PathEscape(r.Object.Namespace))
	e.SetType(EventTypePrefix + string(r.Action))
	e.SetSubject(r.Object.Kind + "/" + r.Object.Namespace + "/" + r.Object.Name)
	e.SetTime(r.Time)
	e.SetDataContentType(event.ApplicationJSON)
	// The record JSON is the data as it is: SetData would base64-encode bytes.
	e.DataEncoded = payload
	e.DataBase64 = false
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w %q: cloudevent: %w", ErrInvalidRecord, r.ID, err)
	}
	return e, nil
}

// encodeEvents returns the request body and media type for the spooled payloads: one
// structured event, or a batch (a JSON array of structured events) if batch is set.
func encodeEvents(payloads [][]byte, source string, batch bool) ([]byte, string, error) {
	if !batch && len(payloads) != 1 {
		return nil, "", errors.New("structured mode sends exactly one record per request")
	}
	var body bytes.Buffer
	if batch {
		body.WriteByte('[')
	}
	for i, p := range payloads {
		e, err := eventFromPayload(p, source)
		if err != nil {
			return nil, "", err
		}
		if i > 0 {
			body.WriteByte(',')
		}
		if err := event.WriteJson(&e, &body); err != nil {
			return nil, "", fmt.Errorf("encode cloudevent %q: %w", e.ID(), err)
		}
	}
	if batch {
		body.WriteByte(']')
		return body.Bytes(), BatchContentType, nil
	}
	return body.Bytes(), EventContentType, nil
}
