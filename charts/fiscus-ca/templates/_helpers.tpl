{{- define "fiscus.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 32 | trimSuffix "-" -}}
{{- end -}}

{{- define "fiscus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fiscus
app.kubernetes.io/component: identity-ca
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "fiscus.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: identity-ca
{{- end -}}

{{- define "fiscus.image" -}}
{{- $img := .Values.image -}}
{{- $repo := ternary $img.repository (printf "%s/%s" $img.registry $img.repository) (empty $img.registry) -}}
{{- if $img.digest -}}{{ $repo }}@{{ $img.digest }}{{- else -}}{{ $repo }}:{{ default .Chart.AppVersion $img.tag }}{{- end -}}
{{- end -}}

{{- define "fiscus.config.identity-ca" -}}
{{- $own := dict
  "data_dir" "/var/lib/fiscus/identity-ca"
  "listen" "0.0.0.0:7100"
  "http_listen" "0.0.0.0:7101" -}}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.config) $own) }}
{{- end -}}

{{/* Names on the CA's own serving certificate: loopback for port-forwards, and its Service. */}}
{{- define "fiscus.sans" -}}
{{- $svc := include "fiscus.fullname" . -}}
{{- $sans := list "localhost" "127.0.0.1" $svc (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.%s" $svc .Release.Namespace .Values.clusterDomain) -}}
{{- concat $sans .Values.init.extraSans | uniq | toJson -}}
{{- end -}}

{{/* Telemetry environment of every container: the OTLP endpoint and sampling
ratio when set, and the resource attribute that names this process among the
consortium's, if any (a list: the root context, then "key=value,..." or ""). */}}
{{- define "fiscus.telemetryEnv" -}}
{{- $ := index . 0 -}}
{{- $attrs := index . 1 -}}
{{- $t := $.Values.telemetry -}}
{{- with $attrs }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
{{- if ne (toString $t.samplingRatio) "1" }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $t.samplingRatio | toString | quote }}
{{- end }}
{{- with $t.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $t.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
