#!/usr/bin/env python3
"""Writes the Fiscus Grafana dashboards (the *.json files next to this script).

The JSON files are what Grafana imports; this script is where they are edited, so that
the four dashboards stay consistent (data source variable, label conventions, units).

    python3 observability/grafana/dashboards.py          # rewrite the JSON files
    python3 observability/grafana/dashboards.py --check  # exit 1 if a file is out of date

Every panel queries the data source chosen in the `datasource` template variable. Label
conventions (from the scrape configs): `component`, `member` (GB/T 2260 code), `orderer`
(the orderer node). Metrics that no service exports yet are in ../metric-names-proposed.txt;
their panels stay empty until the services export them.
"""
import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
OPS_ROUTES = '/metrics|/healthz|/readyz'


class Board:
    def __init__(self, uid, title, description, variables):
        self.uid = uid
        self.title = title
        self.description = description
        self.variables = variables
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        self.panels.append({
            "id": len(self.panels) + 1,
            "type": "row",
            "title": title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "panels": [],
        })
        self.y += 1

    def _targets(self, targets):
        out = []
        for i, t in enumerate(targets):
            expr, legend = t if isinstance(t, tuple) else (t, "")
            out.append({
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": expr,
                "legendFormat": legend or "__auto",
                "range": True,
            })
        return out

    def timeseries(self, title, description, targets, unit="short", w=12, h=8, min0=True):
        defaults = {
            "unit": unit,
            "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                       "showPoints": "never", "spanNulls": False},
        }
        if min0:
            defaults["min"] = 0
        self.panels.append({
            "id": len(self.panels) + 1,
            "type": "timeseries",
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
            "targets": self._targets(targets),
        })

    def stat(self, title, description, expr, unit="short", w=4, h=4, red_at=None,
             red_below=None):
        steps = [{"color": "green", "value": None}]
        if red_at is not None:
            steps.append({"color": "red", "value": red_at})
        if red_below is not None:
            steps = [{"color": "red", "value": None}, {"color": "green", "value": red_below}]
        self.panels.append({
            "id": len(self.panels) + 1,
            "type": "stat",
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "thresholds": {"mode": "absolute", "steps": steps},
                    "color": {"mode": "thresholds"},
                },
                "overrides": [],
            },
            "options": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
            },
            "targets": self._targets([(expr, title)]),
        })

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["fiscus"],
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }]},
            "links": [{
                "title": "Fiscus dashboards",
                "type": "dashboards",
                "tags": ["fiscus"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def datasource_var():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_var(name, label, query, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "allValue": ".*" if multi else None,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "skipUrlSync": False,
    }


MEMBER_VALUES = 'label_values(up{component="gossip-gateway"}, member)'
ORDERER_VALUES = 'label_values(up{component="orderer"}, orderer)'


def overview():
    m = '{member=~"$member"}'
    b = Board("fiscus-consortium-overview", "Fiscus / Consortium overview",
              "Heights, finality, throughput and rejections of the whole consortium.",
              [datasource_var(), query_var("member", "Member", MEMBER_VALUES)])
    b.row("Consortium")
    b.stat("Members up", "Gossip-gateways answering scrapes.",
           'count(up{component="gossip-gateway"} == 1)', red_below=1)
    b.stat("Orderers up", "Orderer nodes answering scrapes.",
           'count(up{component="orderer"} == 1)', red_below=1)
    b.stat("Raft leader", "Node id of the Raft leader (0: none).",
           "max(fiscus_orderer_raft_leader_id)", red_below=1)
    b.stat("Chain height", "Highest height committed by any member.",
           "max(fiscus_gossip_height)")
    b.stat("Final height (lowest)", "Lowest final height over the members.",
           "min(fiscus_gossip_final_height)")
    b.stat("Divergence alarms (1h)", "Heights at which members attested different hashes.",
           "sum(increase(fiscus_gossip_divergence_alarms_total[1h]))", red_at=1)

    b.row("Heights and finality")
    b.timeseries("Committed height", "Height committed by each member.",
                 [(f"fiscus_gossip_height{m}", "{{member}}")], min0=False)
    b.timeseries("Final height", "Highest height final at each member (a majority of "
                 "members attested the same hashes).",
                 [(f"fiscus_gossip_final_height{m}", "{{member}}")], min0=False)
    b.timeseries("Finality lag (heights)", "Committed minus final height, per member.",
                 [(f"fiscus_gossip_height{m} - fiscus_gossip_final_height{m}", "{{member}}")])
    b.timeseries("Commit lag p99", "From a block's timestamp (cut by the orderer leader) to "
                 "its commit at the member, 99th percentile.",
                 [("histogram_quantile(0.99, sum by (member, le) "
                   f"(rate(fiscus_gossip_commit_lag_seconds_bucket{m}[{RATE}])))", "{{member}}")],
                 unit="s")
    b.timeseries("Heights behind the known head", "Highest height the member's gateway has "
                 "seen (orderers, peers) minus its committed height.",
                 [(f"fiscus_gossip_known_height{m} - fiscus_gossip_height{m}", "{{member}}")],
                 w=24)

    b.row("Throughput")
    b.timeseries("Transactions ordered", "Transactions in the blocks the orderers apply "
                 "(max over the nodes: each applies every block).",
                 [(f"max(rate(fiscus_orderer_txs_committed_total[{RATE}]))", "ordered")],
                 unit="reqps")
    b.timeseries("Transactions committed by outcome", "Committed by each member's ledger, "
                 "valid and invalid.",
                 [(f"sum by (member, outcome) (rate(fiscus_ledger_txs_total{m}[{RATE}]))",
                   "{{member}} {{outcome}}")], unit="reqps")
    b.timeseries("Blocks committed", "Blocks committed at each member.",
                 [(f"sum by (member) (rate(fiscus_gossip_blocks_committed_total{m}[{RATE}]))",
                   "{{member}}")], unit="ops")
    b.timeseries("Blocks by source", "Where members got their blocks: orderer, push (from "
                 "a peer), pull (catch-up).",
                 [(f"sum by (source) (rate(fiscus_gossip_blocks_committed_total{m}[{RATE}]))",
                   "{{source}}")], unit="ops")

    b.row("Rejections")
    b.timeseries("Invalid transactions", "Transactions committed with a rejection receipt.",
                 [("sum by (member) (rate(fiscus_ledger_txs_total"
                   f'{{outcome="invalid", member=~"$member"}}[{RATE}]))', "{{member}}")],
                 unit="reqps")
    b.timeseries("Rejections by code", "Invalid transactions by stable rejection code, e.g. "
                 "contract.insufficient_funds.",
                 [(f"sum by (code) (rate(fiscus_ledger_txs_rejected_total{m}[{RATE}]))",
                   "{{code}}")], unit="reqps")
    b.timeseries("Refused at orderer admission", "Envelopes the orderers refused (bad "
                 "signature, size, consortium, duplicate).",
                 [(f"sum by (orderer) (rate(fiscus_orderer_txs_refused_total[{RATE}]))",
                   "orderer {{orderer}}")], unit="reqps")
    b.timeseries("Refused by gateways and ledgers", "Blocks and attestations refused by "
                 "the gateways, by reason; blocks refused by the ledgers.",
                 [(f"sum by (member, reason) (rate(fiscus_gossip_refused_total{m}[{RATE}]))",
                   "{{member}} {{reason}}"),
                  (f"sum by (member) (rate(fiscus_ledger_blocks_refused_total{m}[{RATE}]))",
                   "{{member}} ledger")], unit="ops")

    b.row("Attestations and peers")
    b.timeseries("Attestation lag by member", "How far each member's latest attestation is "
                 "below the observing gateways' heights (median over the gateways).",
                 [("quantile by (peer) (0.5, fiscus_gossip_height - on(job, instance) "
                   "group_right() fiscus_gossip_member_attested_height)", "{{peer}}")])
    b.timeseries("Peers alive", "Peers answering each member's heartbeats.",
                 [(f"fiscus_gossip_peers_alive{m}", "{{member}}")])
    return b


def member_detail():
    m = '{member="$member"}'
    b = Board("fiscus-member-detail", "Fiscus / Member detail",
              "One member: its chain, peers, attestations, storage, events and certificates.",
              [datasource_var(), query_var("member", "Member", MEMBER_VALUES, multi=False)])
    b.row("Chain")
    b.stat("Height", "Committed height.", f"max(fiscus_gossip_height{m})")
    b.stat("Final height", "Highest final height.", f"max(fiscus_gossip_final_height{m})")
    b.stat("Peers alive", "Peers answering heartbeats.", f"max(fiscus_gossip_peers_alive{m})",
           red_below=1)
    b.stat("Divergence alarms", "Alarms counted since the gateway started.",
           f"sum(fiscus_gossip_divergence_alarms_total{m})", red_at=1)
    b.stat("Services up", "This member's targets answering scrapes.", f"sum(up{m})",
           red_below=1)
    b.stat("Certificate expires in", "The soonest expiry among this member's certificates.",
           f"min(fiscus_certificate_expiry_seconds{m})", unit="s", red_below=14 * 86400)
    b.timeseries("Heights", "Committed, final, and highest known (from orderers and peers).",
                 [(f"fiscus_gossip_height{m}", "committed"),
                  (f"fiscus_gossip_final_height{m}", "final"),
                  (f"fiscus_gossip_known_height{m}", "known")], min0=False)
    b.timeseries("Commit lag", "From a block's timestamp to its commit here.",
                 [("histogram_quantile(0.5, sum by (le) "
                   f"(rate(fiscus_gossip_commit_lag_seconds_bucket{m}[{RATE}])))", "p50"),
                  ("histogram_quantile(0.99, sum by (le) "
                   f"(rate(fiscus_gossip_commit_lag_seconds_bucket{m}[{RATE}])))", "p99")],
                 unit="s")
    b.timeseries("Blocks by source", "Blocks committed, by where they came from.",
                 [(f"sum by (source) (rate(fiscus_gossip_blocks_committed_total{m}[{RATE}]))",
                   "{{source}}")], unit="ops")
    b.timeseries("Transactions by outcome", "Committed transactions, valid and invalid.",
                 [(f"sum by (outcome) (rate(fiscus_ledger_txs_total{m}[{RATE}]))",
                   "{{outcome}}")], unit="reqps")
    b.timeseries("Rejections by code", "Invalid transactions by rejection code.",
                 [(f"sum by (code) (rate(fiscus_ledger_txs_rejected_total{m}[{RATE}]))",
                   "{{code}}")], unit="reqps")
    b.timeseries("Refused", "Blocks and attestations refused by the gateway (by reason) "
                 "and blocks refused by the ledger.",
                 [(f"sum by (reason) (rate(fiscus_gossip_refused_total{m}[{RATE}]))",
                   "{{reason}}"),
                  (f"sum(rate(fiscus_ledger_blocks_refused_total{m}[{RATE}]))", "ledger")],
                 unit="ops")

    b.row("Peers and attestations")
    b.timeseries("Peer scores", "Score of each peer (ban at -30 by default).",
                 [(f"fiscus_gossip_peer_score{m}", "{{peer}}")], min0=False)
    b.timeseries("Attestation lag by peer", "This gateway's height minus the latest "
                 "attestation it holds from each member.",
                 [(f"fiscus_gossip_height{m} - on(job, instance) group_right() "
                   f"fiscus_gossip_member_attested_height{m}", "{{peer}}")])

    b.row("Storage, events, certificates")
    b.timeseries("Durable write p99 by store", "99th percentile of fsynced commits.",
                 [("histogram_quantile(0.99, sum by (component, store, le) "
                   f"(rate(fiscus_store_fsync_seconds_bucket{m}[{RATE}])))",
                   "{{component}} {{store}}")], unit="s")
    b.timeseries("NATS connected", "1 while the gateway's NATS connection is up.",
                 [(f"fiscus_nats_connected{m}", "{{component}}")])
    b.timeseries("Webhook delivery attempts", "Attempts by webhook and outcome.",
                 [("sum by (webhook, outcome) "
                   f"(rate(fiscus_webhook_delivery_attempts_total{m}[{RATE}]))",
                   "{{webhook}} {{outcome}}")], unit="ops")
    b.timeseries("Webhook dead letters (1h)", "Events given up after every retry.",
                 [(f"sum by (webhook) (increase(fiscus_webhook_dead_letters_total{m}[1h]))",
                   "{{webhook}}")])
    b.timeseries("Certificate expiry", "Time left on each certificate of this member.",
                 [(f"fiscus_certificate_expiry_seconds{m}", "{{component}} {{role}} {{key}}")], unit="s")
    b.timeseries("Targets up", "1 while Prometheus can scrape the service.",
                 [(f"up{m}", "{{component}}")])
    return b


def orderer_raft():
    o = '{orderer=~"$orderer"}'
    b = Board("fiscus-orderer-raft", "Fiscus / Orderer Raft",
              "The ordering cluster: leadership, terms, ordering throughput and latency, disk.",
              [datasource_var(), query_var("orderer", "Orderer node", ORDERER_VALUES)])
    b.row("Raft")
    b.stat("Leader", "Node id of the leader (0: none).",
           "max(fiscus_orderer_raft_leader_id)", red_below=1)
    b.stat("Term", "Raft term (highest over the nodes).", "max(fiscus_orderer_raft_term)")
    b.stat("Leader changes (1h)", "Highest count over the nodes.",
           "max(increase(fiscus_orderer_raft_leader_changes_total[1h]))", red_at=4)
    b.stat("Nodes up", "Orderer nodes answering scrapes.", 'sum(up{component="orderer"})',
           red_below=2)
    b.stat("Height", "Highest block applied by any node.", "max(fiscus_orderer_height)")
    b.stat("Ordered tx/s", "Transactions in applied blocks (max over nodes).",
           f"max(rate(fiscus_orderer_txs_committed_total[{RATE}]))", unit="reqps")
    b.timeseries("Leader seen by each node", "The leader id each node knows (0: none).",
                 [(f"fiscus_orderer_raft_leader_id{o}", "node {{orderer}}")])
    b.timeseries("Term", "Raft term at each node.",
                 [(f"fiscus_orderer_raft_term{o}", "node {{orderer}}")], min0=False)
    b.timeseries("Leader changes", "Leader changes seen by each node.",
                 [(f"increase(fiscus_orderer_raft_leader_changes_total{o}[{RATE}])",
                   "node {{orderer}}")])
    b.timeseries("Height by node", "Last block applied by each node.",
                 [(f"fiscus_orderer_height{o}", "node {{orderer}}")], min0=False)

    b.row("Ordering")
    b.timeseries("Blocks applied", "Blocks applied per second by each node.",
                 [(f"rate(fiscus_orderer_blocks_committed_total{o}[{RATE}])",
                   "node {{orderer}}")], unit="ops")
    b.timeseries("Transactions ordered", "Transactions in applied blocks, per node.",
                 [(f"rate(fiscus_orderer_txs_committed_total{o}[{RATE}])",
                   "node {{orderer}}")], unit="reqps")
    b.timeseries("Transactions per block", "Mean block size in transactions.",
                 [(f"rate(fiscus_orderer_txs_committed_total{o}[{RATE}]) / "
                   f"rate(fiscus_orderer_blocks_committed_total{o}[{RATE}])",
                   "node {{orderer}}")])
    b.timeseries("Refused at admission", "Envelopes refused by the leader's admission.",
                 [(f"rate(fiscus_orderer_txs_refused_total{o}[{RATE}])", "node {{orderer}}")],
                 unit="reqps")
    b.timeseries("Admission queue depth", "Envelopes admitted and waiting to be cut.",
                 [(f"fiscus_orderer_admission_queue_depth{o}", "node {{orderer}}")])
    b.timeseries("Proposal to commit", "From proposing a block to Raft to its commit.",
                 [("histogram_quantile(0.5, sum by (orderer, le) (rate("
                   f"fiscus_orderer_proposal_commit_seconds_bucket{o}[{RATE}])))",
                   "p50 node {{orderer}}"),
                  ("histogram_quantile(0.99, sum by (orderer, le) (rate("
                   f"fiscus_orderer_proposal_commit_seconds_bucket{o}[{RATE}])))",
                   "p99 node {{orderer}}")], unit="s")

    b.row("Disk and CPU")
    b.timeseries("Raft write (fsync) latency", "Seconds per fsynced Ready write.",
                 [("histogram_quantile(0.5, sum by (orderer, le) (rate("
                   f"fiscus_orderer_persist_seconds_bucket{o}[{RATE}])))", "p50 node {{orderer}}"),
                  ("histogram_quantile(0.99, sum by (orderer, le) (rate("
                   f"fiscus_orderer_persist_seconds_bucket{o}[{RATE}])))", "p99 node {{orderer}}")],
                 unit="s")
    b.timeseries("Raft writes", "Fsynced Ready writes per second.",
                 [(f"rate(fiscus_orderer_persist_seconds_count{o}[{RATE}])",
                   "node {{orderer}}")], unit="ops")
    b.timeseries("Signature check per batch", "Pool-thread seconds per batched signature "
                 "check at admission.",
                 [("histogram_quantile(0.99, sum by (orderer, le) (rate("
                   f"fiscus_orderer_admission_verify_seconds_bucket{o}[{RATE}])))",
                   "p99 node {{orderer}}")], unit="s")
    b.timeseries("Snapshots and compactions (1h)", "Snapshots installed (a node fell behind "
                 "the compaction point) and log compactions.",
                 [(f"increase(fiscus_orderer_snapshots_installed_total{o}[1h])",
                   "snapshots node {{orderer}}"),
                  (f"increase(fiscus_orderer_log_compactions_total{o}[1h])",
                   "compactions node {{orderer}}")])
    b.timeseries("Certificate expiry", "Time left on each orderer's TLS certificate.",
                 [(f'fiscus_certificate_expiry_seconds{{component="orderer", orderer=~"$orderer"}}',
                   "node {{orderer}}")], unit="s", w=24)
    return b


def api():
    http = ('{component="exchange-adapter", member=~"$member", '
            f'route!~"{OPS_ROUTES}"}}')
    http5 = ('{component="exchange-adapter", member=~"$member", code=~"5..", '
             f'route!~"{OPS_ROUTES}"}}')
    grpc = '{grpc_service="fiscus.exchange.v1.Exchange", member=~"$member"}'
    grpc5 = ('{grpc_service="fiscus.exchange.v1.Exchange", member=~"$member", '
             'grpc_code=~"Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded"}')
    b = Board("fiscus-api", "Fiscus / API",
              "The exchange-adapter's REST and gRPC API (requests, errors, duration), "
              "webhooks, and the identity-ca.",
              [datasource_var(), query_var("member", "Member", MEMBER_VALUES)])
    b.row("REST")
    b.timeseries("Requests by route", "REST requests per second, by route template.",
                 [("sum by (route) (rate("
                   f"fiscus_http_server_request_duration_seconds_count{http}[{RATE}]))",
                   "{{route}}")], unit="reqps")
    b.timeseries("Responses by status", "REST responses per second, by HTTP status.",
                 [("sum by (code) (rate("
                   f"fiscus_http_server_request_duration_seconds_count{http}[{RATE}]))",
                   "{{code}}")], unit="reqps")
    b.timeseries("Server error ratio", "Share of REST requests answered 5xx, per member.",
                 [("sum by (member) (rate("
                   f"fiscus_http_server_request_duration_seconds_count{http5}[{RATE}])) / "
                   "sum by (member) (rate("
                   f"fiscus_http_server_request_duration_seconds_count{http}[{RATE}]))",
                   "{{member}}")], unit="percentunit")
    b.timeseries("Duration p99 by route", "99th percentile of REST request duration.",
                 [("histogram_quantile(0.99, sum by (route, le) (rate("
                   f"fiscus_http_server_request_duration_seconds_bucket{http}[{RATE}])))",
                   "{{route}}")], unit="s")

    b.row("gRPC")
    b.timeseries("Calls by method", "gRPC calls to fiscus.exchange.v1.Exchange per second.",
                 [("sum by (grpc_method) (rate("
                   f"fiscus_grpc_server_request_duration_seconds_count{grpc}[{RATE}]))",
                   "{{grpc_method}}")], unit="reqps")
    b.timeseries("Calls by status code", "gRPC calls per second, by status code.",
                 [("sum by (grpc_code) (rate("
                   f"fiscus_grpc_server_request_duration_seconds_count{grpc}[{RATE}]))",
                   "{{grpc_code}}")], unit="reqps")
    b.timeseries("Server error ratio", "Share of gRPC calls ending Unknown, Internal, "
                 "Unavailable, DataLoss or DeadlineExceeded, per member.",
                 [("sum by (member) (rate("
                   f"fiscus_grpc_server_request_duration_seconds_count{grpc5}[{RATE}])) / "
                   "sum by (member) (rate("
                   f"fiscus_grpc_server_request_duration_seconds_count{grpc}[{RATE}]))",
                   "{{member}}")], unit="percentunit")
    b.timeseries("Duration p99 by method", "99th percentile of gRPC call duration (a stream "
                 "counts once, when it ends).",
                 [("histogram_quantile(0.99, sum by (grpc_method, le) (rate("
                   f"fiscus_grpc_server_request_duration_seconds_bucket{grpc}[{RATE}])))",
                   "{{grpc_method}}")], unit="s")
    b.timeseries("Internal gRPC errors by service", "Non-OK gRPC calls between Fiscus "
                 "services (orderer, ledger, gossip, executor, identity-ca).",
                 [("sum by (component, grpc_service, grpc_code) (rate("
                   "fiscus_grpc_server_request_duration_seconds_count"
                   f'{{grpc_code!="OK", grpc_service!="fiscus.exchange.v1.Exchange"}}[{RATE}]))',
                   "{{component}} {{grpc_service}} {{grpc_code}}")], unit="reqps", w=24)

    b.row("Webhooks")
    b.timeseries("Delivery attempts", "Webhook POSTs by outcome.",
                 [("sum by (member, webhook, outcome) (rate("
                   f'fiscus_webhook_delivery_attempts_total{{member=~"$member"}}[{RATE}]))',
                   "{{member}} {{webhook}} {{outcome}}")], unit="ops")
    b.timeseries("Dead letters (1h)", "Events given up after every retry.",
                 [("sum by (member, webhook) (increase("
                   'fiscus_webhook_dead_letters_total{member=~"$member"}[1h]))',
                   "{{member}} {{webhook}}")])

    b.row("identity-ca")
    b.timeseries("Certificates issued", "Certificates issued per hour, by role.",
                 [("sum by (role) (increase(fiscus_ca_certificates_issued_total[1h]))",
                   "{{role}}")], w=8)
    b.timeseries("Requests refused", "identity-ca requests refused per hour, by code.",
                 [("sum by (code) (increase(fiscus_ca_requests_refused_total[1h]))",
                   "{{code}}")], w=8)
    b.timeseries("Verify calls", "Verify calls per second, by outcome.",
                 [(f"sum by (valid) (rate(fiscus_ca_verifications_total[{RATE}]))",
                   "valid={{valid}}")], unit="reqps", w=8)
    return b


BOARDS = {
    "consortium-overview.json": overview,
    "member-detail.json": member_detail,
    "orderer-raft.json": orderer_raft,
    "api.json": api,
}


def render(make):
    return json.dumps(make().json(), indent=2, ensure_ascii=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    check = "--check" in sys.argv[1:]
    stale = []
    for name, make in BOARDS.items():
        path = os.path.join(here, name)
        text = render(make)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 observability/grafana/dashboards.py): "
              + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
