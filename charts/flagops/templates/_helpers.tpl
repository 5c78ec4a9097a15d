{{/*
Helpers of the flagops chart. Written by hand, as are evaluator-keys-secret.yaml,
validate.yaml and NOTES.txt; the other templates are generated from config/default by
hack/chartgen (make chart).
*/}}

{{/* The chart label: name-version. */}}
{{- define "flagops.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image of the manager and the evaluator: repository:tag, the tag defaulting to appVersion. */}}
{{- define "flagops.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* "true" when an audit sink is an HTTP one, which spools on a volume; else empty. */}}
{{- define "flagops.httpAuditSink" -}}
{{- range .Values.manager.audit.sinks }}
{{- if or (hasPrefix "http://" .) (hasPrefix "https://" .) }}true{{ break }}{{ end }}
{{- end }}
{{- end }}

{{/* The labels of the objects written by hand. */}}
{{- define "flagops.labels" -}}
app.kubernetes.io/name: flagops
app.kubernetes.io/part-of: flagops
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "flagops.chart" . }}
{{- end }}
