{{/*
Each service's TOML: the tunables from values (<component>.config), overlaid
with the keys the chart owns (addresses, paths, endpoints), so that the two
cannot disagree. Only keys of config/<service>.example.toml appear;
tests/charts/test_config_keys.py checks that.
*/}}
{{- define "fiscus.ledgerEndpoint" -}}
addr: {{ printf "%s-ledger-store:7300" (include "fiscus.fullname" .) }}
server_name: {{ default (printf "%s-ledger-store" (include "fiscus.fullname" .)) .Values.ledgerStore.serverName }}
{{- end -}}

{{- define "fiscus.config.ledger-store" -}}
{{- $own := dict
  "listen" "0.0.0.0:7300"
  "http_listen" "0.0.0.0:7320"
  "data_dir" "/var/lib/fiscus/ledger"
  "genesis_file" (include "fiscus.genesisFile" .)
  "signers_dir" "/etc/fiscus/signers"
  "tls" (include "fiscus.tlsFiles" . | fromYaml) -}}
{{- /* No `orderers`: the member's gossip-gateway is its one orderer follower
       and feeds the ledger-store; two followers would race to commit. */}}
{{- if .Values.contractExecutor.enabled }}
{{- $_ := set $own "executor" (dict
  "addr" (printf "%s-contract-executor:7400" (include "fiscus.fullname" .))
  "server_name" (default (printf "%s-contract-executor" (include "fiscus.fullname" .)) .Values.contractExecutor.serverName)) }}
{{- end }}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.ledgerStore.config) $own) }}
{{- end -}}

{{- define "fiscus.config.contract-executor" -}}
{{- $own := dict
  "listen" "0.0.0.0:7400"
  "http_listen" "0.0.0.0:7420"
  "tls" (include "fiscus.tlsFiles" . | fromYaml) -}}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.contractExecutor.config) $own) }}
{{- end -}}

{{- define "fiscus.config.gossip-gateway" -}}
{{- $own := dict
  "listen" "0.0.0.0:7500"
  "http_listen" "0.0.0.0:7520"
  "genesis_file" (include "fiscus.genesisFile" .)
  "signers_dir" "/etc/fiscus/signers"
  "tls" (include "fiscus.tlsFiles" . | fromYaml)
  "ledger" (include "fiscus.ledgerEndpoint" . | fromYaml)
  "orderers" .Values.orderers -}}
{{- with .Values.gossipGateway.peers }}{{ $_ := set $own "peers" . }}{{ end }}
{{- with .Values.nats.url }}{{ $_ := set $own "nats_url" . }}{{ end }}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.gossipGateway.config) $own) }}
{{- end -}}

{{- define "fiscus.config.exchange-adapter" -}}
{{- $own := dict
  "listen" "0.0.0.0:8080"
  "http_listen" "0.0.0.0:9480"
  "genesis_file" (include "fiscus.genesisFile" .)
  "signers_dir" "/etc/fiscus/signers"
  "clients_file" "/etc/fiscus/clients/api-clients.toml"
  "tls" (include "fiscus.tlsFiles" . | fromYaml)
  "ledger" (include "fiscus.ledgerEndpoint" . | fromYaml)
  "orderers" .Values.orderers -}}
{{- if .Values.exchangeAdapter.grpc.enabled }}{{ $_ := set $own "grpc_listen" "0.0.0.0:8443" }}{{ end }}
{{- include "fiscus.toml" (mustMergeOverwrite (deepCopy .Values.exchangeAdapter.config) $own) }}
{{- end -}}
