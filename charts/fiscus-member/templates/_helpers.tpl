{{/* Base name of every object: the release name, unless fullnameOverride. */}}
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
fiscus.io/member: {{ .Values.member.code | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (list $ "ledger-store"). */}}
{{- define "fiscus.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "fiscus.componentLabels" -}}
{{ include "fiscus.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "fiscus.image" -}}
{{- $img := .Values.image -}}
{{- $repo := ternary $img.repository (printf "%s/%s" $img.registry $img.repository) (empty $img.registry) -}}
{{- if $img.digest -}}{{ $repo }}@{{ $img.digest }}{{- else -}}{{ $repo }}:{{ default .Chart.AppVersion $img.tag }}{{- end -}}
{{- end -}}

{{- define "fiscus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "fiscus.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "fiscus.tlsSecretName" -}}
{{- default (printf "%s-node-tls" (include "fiscus.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/* The member's node certificate, as every service's [tls] table names it
     (with its ECDSA P-256 certificate unless tls.ecdsa is false). */}}
{{- define "fiscus.tlsFiles" -}}
cert_file: /etc/fiscus/tls/cert.pem
key_file: /etc/fiscus/tls/key.pem
ca_file: /etc/fiscus/tls/ca.pem
{{- if .Values.tls.ecdsa }}
ecdsa_cert_file: /etc/fiscus/tls/cert-ecdsa.pem
ecdsa_key_file: /etc/fiscus/tls/key-ecdsa.pem
{{- end }}
{{- end -}}

{{/* Pod-level parts shared by every component; call with (list $ componentValues). */}}
{{- define "fiscus.podSpec" -}}
{{- $ := index . 0 -}}
{{- $c := index . 1 -}}
serviceAccountName: {{ include "fiscus.serviceAccountName" $ }}
automountServiceAccountToken: false
{{- with $.Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext: {{- toYaml $.Values.podSecurityContext | nindent 2 }}
{{- with $c.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container-level parts shared by every component; call with (list $ componentValues). */}}
{{- define "fiscus.containerCommon" -}}
{{- $ := index . 0 -}}
{{- $c := index . 1 -}}
image: {{ include "fiscus.image" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
# Relative paths in the services' defaults (e.g. the adapter's webhook cursors) land on a writable volume.
workingDir: /var/lib/fiscus
securityContext: {{- toYaml $.Values.containerSecurityContext | nindent 2 }}
env: {{- include "fiscus.telemetryEnv" (list $ (printf "fiscus.member=%s" $.Values.member.code)) | trim | nindent 2 }}
resources: {{- toYaml $c.resources | nindent 2 }}
livenessProbe:
  httpGet: { path: /healthz, port: ops }
  {{- toYaml $.Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: { path: /readyz, port: ops }
  {{- toYaml $.Values.probes.readiness | nindent 2 }}
startupProbe:
  httpGet: { path: /healthz, port: ops }
  {{- toYaml $.Values.probes.startup | nindent 2 }}
{{- end -}}

{{/* Mounts every service of the member needs: config, node TLS, genesis, signers, scratch. */}}
{{- define "fiscus.volumeMounts" -}}
- { name: config, mountPath: /etc/fiscus/config, readOnly: true }
- { name: tls, mountPath: /etc/fiscus/tls, readOnly: true }
- { name: tmp, mountPath: /tmp }
{{- end -}}

{{- define "fiscus.consortiumMounts" -}}
- { name: genesis, mountPath: /etc/fiscus/genesis, readOnly: true }
- { name: signers, mountPath: /etc/fiscus/signers, readOnly: true }
{{- end -}}

{{/* Call with (list $ "ledger-store"). */}}
{{- define "fiscus.volumes" -}}
{{- $ := index . 0 -}}
- name: config
  configMap: { name: {{ include "fiscus.fullname" $ }}-{{ index . 1 }} }
- name: tls
  secret: { secretName: {{ include "fiscus.tlsSecretName" $ }}, defaultMode: 0440 }
- name: tmp
  emptyDir: { sizeLimit: 64Mi }
{{- end -}}

{{- define "fiscus.consortiumVolumes" -}}
- name: genesis
  {{- if eq .Values.genesis.kind "Secret" }}
  secret: { secretName: {{ .Values.genesis.name }} }
  {{- else }}
  configMap: { name: {{ .Values.genesis.name }} }
  {{- end }}
- name: signers
  configMap: { name: {{ .Values.signers.configMapName }} }
{{- end -}}

{{- define "fiscus.genesisFile" -}}/etc/fiscus/genesis/{{ .Values.genesis.key }}{{- end -}}

{{/* checksum/config of one component's rendered config; call with (list $ "ledger-store"). */}}
{{- define "fiscus.configChecksum" -}}
{{- $ := index . 0 -}}
{{- include (printf "fiscus.config.%s" (index . 1)) $ | sha256sum -}}
{{- end -}}

{{/* The ops port (/metrics, /healthz, /readyz) for Prometheus. Kubelet probes are not subject to NetworkPolicy on common CNIs. */}}
{{- define "fiscus.metricsIngress" -}}
- ports: [{ port: ops }]
  {{- with .Values.networkPolicy.metricsFrom }}
  from: {{- toYaml . | nindent 4 }}
  {{- end }}
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
