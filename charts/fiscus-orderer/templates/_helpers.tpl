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
app.kubernetes.io/component: orderer
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "fiscus.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: orderer
{{- end -}}

{{- define "fiscus.image" -}}
{{- $img := .Values.image -}}
{{- $repo := ternary $img.repository (printf "%s/%s" $img.registry $img.repository) (empty $img.registry) -}}
{{- if $img.digest -}}{{ $repo }}@{{ $img.digest }}{{- else -}}{{ $repo }}:{{ default .Chart.AppVersion $img.tag }}{{- end -}}
{{- end -}}

{{- define "fiscus.headless" -}}{{ include "fiscus.fullname" . }}-headless{{- end -}}

{{/* Raft ids start at 1 (raft-rs reserves 0), so pod N is node N+1. */}}
{{- define "fiscus.tlsSecret" -}}{{ .root.Values.tls.secretPrefix }}-{{ .id }}{{- end -}}

{{- define "fiscus.quorum" -}}{{ add (div (int .Values.replicaCount) 2) 1 }}{{- end -}}

{{/*
The node's TOML. Every pod mounts the same file, written for node 1; the
container's entrypoint overrides node_id and the [tls] files for its own
ordinal through FISCUS_ORDERER__* variables (ADR 0003's layering).
*/}}
{{- define "fiscus.config.orderer" -}}
{{- $peers := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $host := printf "%s-%d.%s.%s.svc.%s" (include "fiscus.fullname" $) $i (include "fiscus.headless" $) $.Release.Namespace $.Values.clusterDomain -}}
{{- $peers = append $peers (dict "id" (add $i 1) "raft_addr" (printf "%s:7210" $host) "client_addr" (printf "%s:7200" $host) "server_name" (printf "%s%d" $.Values.serverNamePrefix (add $i 1))) -}}
{{- end -}}
{{- $own := dict
  "node_id" 1
  "consortium_id" .Values.consortiumId
  "listen" "0.0.0.0:7200"
  "raft_listen" "0.0.0.0:7210"
  "http_listen" "0.0.0.0:7220"
  "data_dir" "/var/lib/fiscus/orderer"
  "signers_dir" "/etc/fiscus/signers"
  "tls" (dict "cert_file" "/etc/fiscus/tls/1/cert.pem" "key_file" "/etc/fiscus/tls/1/key.pem" "ca_file" "/etc/fiscus/tls/1/ca.pem")
  "peers" $peers -}}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.config) $own) }}
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
