{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "ferroturn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; a release already called after the chart is not repeated. */}}
{{- define "ferroturn.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferroturn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferroturn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferroturn.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ferroturn.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: turn
{{- end }}

{{/* The Secret holding the TLS certificate: given, or the one cert-manager fills. */}}
{{- define "ferroturn.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "ferroturn.fullname" .) }}
{{- end }}
{{- end }}

{{/* Number of relay ports in the range. */}}
{{- define "ferroturn.relayCount" -}}
{{- add1 (sub (int .Values.relay.maxPort) (int .Values.relay.minPort)) }}
{{- end }}

{{/* Combinations the schema cannot express; a bad one stops the install with a reason. */}}
{{- define "ferroturn.validate" -}}
{{- $v := .Values }}
{{- if gt (int $v.relay.minPort) (int $v.relay.maxPort) }}
{{- fail (printf "relay.minPort (%v) must not be greater than relay.maxPort (%v)" $v.relay.minPort $v.relay.maxPort) }}
{{- end }}
{{- if and $v.hostNetwork $v.hostPort.enabled }}
{{- fail "hostNetwork and hostPort.enabled exclude each other: host networking already uses the node's ports" }}
{{- end }}
{{- if not (or $v.hostNetwork $v.hostPort.enabled $v.service.enabled) }}
{{- fail "hostNetwork=false needs hostPort.enabled=true or service.enabled=true: otherwise no client outside the cluster reaches the listener or the relay ports" }}
{{- end }}
{{- if and $v.hostNetwork $v.service.enabled }}
{{- fail "service.enabled needs hostNetwork=false: a Service cannot forward to relay ports bound on the node" }}
{{- end }}
{{- if and (or $v.hostPort.enabled $v.service.enabled) (gt (int (include "ferroturn.relayCount" .)) (int $v.relay.maxListedPorts)) }}
{{- fail (printf "the relay range %v-%v has %s ports; hostPort and Service modes list each one, so keep it within relay.maxListedPorts (%v) or use hostNetwork" $v.relay.minPort $v.relay.maxPort (include "ferroturn.relayCount" .) $v.relay.maxListedPorts) }}
{{- end }}
{{- if and $v.service.enabled (or (eq $v.kind "DaemonSet") (gt (int $v.replicas) 1)) }}
{{- fail "service.enabled works with one relay only (kind Deployment, replicas 1): the Service would spread one client's relay ports over several pods" }}
{{- end }}
{{- if and $v.externalIP.address $v.externalIP.fromHostIP }}
{{- fail "set externalIP.address or externalIP.fromHostIP, not both" }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.existingSecret) (not $v.tls.certManager.enabled) }}
{{- fail "tls.enabled needs tls.existingSecret or tls.certManager.enabled" }}
{{- end }}
{{- if and $v.tls.enabled $v.tls.certManager.enabled (not $v.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if and $v.tls.enabled $v.tls.certManager.enabled (not (or $v.tls.certManager.dnsNames $v.publicHost)) }}
{{- fail "tls.certManager.enabled needs tls.certManager.dnsNames or publicHost" }}
{{- end }}
{{- end }}
