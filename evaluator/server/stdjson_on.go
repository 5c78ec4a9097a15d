//go:build stdjson

package server

// stdJSON: see stdjson_off.go.
const stdJSON = true
