module github.com/flagops/flagops/sdk/go/inprocess

go 1.26.0

toolchain go1.26.10

require (
	github.com/flagops/flagops v0.0.0
	github.com/flagops/flagops/sdk/go v0.0.0
	github.com/open-feature/go-sdk v1.20.0
)

require (
	github.com/Masterminds/semver/v3 v3.5.0 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	go.uber.org/mock v0.6.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)

// The evaluator core and the SDK's shared packages come from this repository.
replace (
	github.com/flagops/flagops => ../../..
	github.com/flagops/flagops/sdk/go => ..
)
