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

package main

// chartTemplate is Chart.yaml. Its appVersion is the image tag of config/default; a release
// sets both versions with `helm package --version V --app-version V`.
const chartTemplate = `apiVersion: v2
name: flagops
description: Kubernetes-native feature flags - the CRDs, the manager (admission webhooks, status, audit trail) and the evaluator that serves flags to devices and applications.
type: application
version: {{ .Version }}
appVersion: {{ printf "%q" .AppVersion }}
# The admission policies need Kubernetes 1.32 or later (config/crd/policy).
kubeVersion: ">=1.32.0-0"
keywords: [feature-flags, openfeature, ofrep]
`

// valuesTemplate is values.yaml; its defaults come from config/default, so that the chart
// rendered with them is config/default.
const valuesTemplate = `# The flagops chart's values. The defaults are those of config/default (hack/chartgen reads
# them from it): rendered with them in the namespace flagops-system, the chart is
# config/default object for object, less the Namespace. values.schema.json checks every
# value; an unknown key is an error. Install into a namespace that exists or that Helm
# creates: helm install flagops charts/flagops -n flagops-system --create-namespace
# (docs/deploy.md#helm).

# The image of the manager and the evaluator.
image:
  repository: {{ .Repository }}
  # Empty: the chart's appVersion.
  tag: ""
  # Empty: the cluster's default (IfNotPresent for a tag other than latest).
  pullPolicy: ""

# Secrets to pull the image with, e.g. [{name: regcred}].
imagePullSecrets: []

# The CustomResourceDefinitions and the ValidatingAdmissionPolicies that check flag values
# (config/crd).
crds:
  # Install them with the chart. Turn off where they are installed otherwise, e.g. from
  # dist/crds.yaml.
  enabled: true
  # Annotate them helm.sh/resource-policy: keep, so that helm uninstall leaves them, and with
  # them every flag and override in the cluster. With false, helm uninstall deletes every
  # flag and override.
  keep: true

# flagops manager: the admission webhooks, status, events, the audit trail, expiry cleanup
# and schedule steps. It serves no flags to devices.
manager:
  replicas: {{ index .Replicas "manager" }}
  # Elect a leader among the replicas (--leader-elect); only the leader writes status,
  # events and audit records. Turn off only with one replica.
  leaderElection: true
  audit:
    # The Secret (in the release's namespace, key "key") that signs the audit trail's actor
    # stamps; create it before installing (docs/audit.md). The chart never holds this key.
    stampKeySecret: {{ .StampKeySecret }}
    # Where audit records go, each a --audit-sink: stdout, file:PATH, http://URL or
    # https://URL. Empty: stdout. An HTTP sink on a port other than 443 needs a rule in
    # manager.networkPolicy.extraEgress.
    sinks: []
    # With an HTTP sink: the volume the records are spooled on until the receiver takes them
    # (--audit-spool-dir). The spool of each HTTP sink holds up to 128 MiB. An emptyDir loses
    # what it holds when the pod is deleted; a persistentVolumeClaim keeps it.
    spoolVolume:
      emptyDir:
        sizeLimit: 160Mi
  # More arguments for flagops manager.
  extraArgs: []
  resources:
{{ index .Resources "manager" }}
  # One replica per node where the cluster has nodes enough.
  affinity:
{{ index .Affinity "manager" }}
  nodeSelector: {}
  tolerations: []
  # Rules added to those of the NetworkPolicy flagops-controller-manager.
  networkPolicy:
    extraIngress: []
    extraEgress: []

# flagops evaluator: serves flags and overrides to devices and applications behind the
# Service flagops-evaluator (port 8080); read-only.
evaluator:
  enabled: true
  replicas: {{ index .Replicas "evaluator" }}
  # The public keys that context tokens are checked against (docs/deploy.md#the-keys-secret).
  keys:
    # The Secret (key jwks.json) the evaluator reads them from.
    secretName: {{ .KeysSecret }}
    # A JSON Web Key Set (a string of JSON, or the object itself): the chart creates the
    # Secret secretName with it. Unset (null): create the Secret yourself; the evaluator does
    # not start without it. (null rather than "", so that Helm does not warn when an object
    # replaces the default.)
    jwks: null
  # More arguments for flagops evaluator, e.g. --namespaces=shop,billing.
  extraArgs: []
  resources:
{{ index .Resources "evaluator" }}
  # One replica per node where the cluster has nodes enough.
  affinity:
{{ index .Affinity "evaluator" }}
  nodeSelector: {}
  tolerations: []
  # Rules added to those of the NetworkPolicy flagops-evaluator.
  networkPolicy:
    extraIngress: []
    extraEgress: []
`
