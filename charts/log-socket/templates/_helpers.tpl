{{/* Chart name, overridable. */}}
{{- define "log-socket.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name (so `helm install log-socket`
gives plain "log-socket", the name k8stail expects), otherwise <release>-<chart>.
*/}}
{{- define "log-socket.fullname" -}}
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

{{- define "log-socket.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "log-socket.labels" -}}
helm.sh/chart: {{ include "log-socket.chart" . }}
{{ include "log-socket.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: log-socket
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The pods' identity: stable across upgrades, so never add a versioned label here. */}}
{{- define "log-socket.selectorLabels" -}}
app.kubernetes.io/name: {{ include "log-socket.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The one name used by the ServiceAccount, the ClusterRoleBinding subject and the pod spec. */}}
{{- define "log-socket.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "log-socket.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "log-socket.serviceName" -}}
{{- default (include "log-socket.fullname" .) .Values.service.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The StatefulSet's governing Service (headless): gives each replica pod its stable name. */}}
{{- define "log-socket.headlessServiceName" -}}
{{- printf "%s-replicas" (include "log-socket.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "log-socket.tapperRoleName" -}}
{{- default (printf "%s-tapper" (include "log-socket.fullname" .)) .Values.rbac.tapper.name }}
{{- end }}

{{- define "log-socket.ingestKeySecretName" -}}
{{- default (printf "%s-ingest-key" (include "log-socket.fullname" .)) .Values.ingestKey.existingSecret }}
{{- end }}

{{- define "log-socket.ingestBaseURL" -}}
{{- if .Values.ingestBaseURL }}
{{- .Values.ingestBaseURL | trimSuffix "/" }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "log-socket.serviceName" .) .Release.Namespace (int .Values.ports.ingest) }}
{{- end }}
{{- end }}

{{- define "log-socket.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
