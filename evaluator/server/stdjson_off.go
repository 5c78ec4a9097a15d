//go:build !stdjson

package server

// stdJSON selects the encoding/json implementations of stdjson.go in place
// of the hand-written request decoder and response encoders; build with
// -tags stdjson to compare the two (hack/ofrepload.sh).
const stdJSON = false
