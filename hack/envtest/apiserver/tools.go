//go:build tools

// Package tools pins k8s.io/kubernetes so that `go build k8s.io/kubernetes/cmd/kube-apiserver`
// resolves inside this module. The build tag keeps it out of every real build.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
