{{/*
TOML rendering for the service configs. Helm's own toToml turns every YAML
number into a float (threads = 2.0, 2.68435456e+08), which the services'
serde structs reject for integer keys, so the configs are written here.
Identical in every Fiscus chart; tests/charts checks the copies agree.
Nulls are left out, so a key set to null in values keeps the service default.
*/}}
{{- define "fiscus.toml.value" -}}
{{- if kindIs "string" . -}}{{ toJson . }}
{{- else if kindIs "bool" . -}}{{ . }}
{{- else if kindIs "slice" . -}}[{{ range $i, $e := . }}{{ if $i }}, {{ end }}{{ include "fiscus.toml.value" $e }}{{ end }}]
{{- else if eq (float64 .) (floor .) -}}{{ int64 . }}
{{- else -}}{{ . }}
{{- end -}}
{{- end -}}

{{/* A table: scalars first (TOML requires it), then sub-tables, then arrays of tables. */}}
{{- define "fiscus.toml.table" -}}
{{- $t := .table -}}
{{- $prefix := .prefix -}}
{{- range $k := keys $t | sortAlpha }}
{{- $v := get $t $k }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (and (kindIs "slice" $v) $v (kindIs "map" (first $v)))) }}
{{ $k }} = {{ include "fiscus.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k := keys $t | sortAlpha }}
{{- $v := get $t $k }}
{{- if kindIs "map" $v }}

[{{ $prefix }}{{ $k }}]
{{- include "fiscus.toml.table" (dict "table" $v "prefix" (printf "%s%s." $prefix $k)) }}
{{- end }}
{{- end }}
{{- range $k := keys $t | sortAlpha }}
{{- $v := get $t $k }}
{{- if and (kindIs "slice" $v) $v (kindIs "map" (first $v)) }}
{{- range $e := $v }}

[[{{ $prefix }}{{ $k }}]]
{{- include "fiscus.toml.table" (dict "table" $e "prefix" (printf "%s%s." $prefix $k)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "fiscus.toml" -}}
{{- include "fiscus.toml.table" (dict "table" . "prefix" "") | trim }}
{{- end -}}
