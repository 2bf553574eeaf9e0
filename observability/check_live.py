#!/usr/bin/env python3
"""Checks a real Prometheus that scraped a devnet under load (prometheus-devnet.sh).

Asks its HTTP API, and prints one line per check, then "N passed, M failed"
(exit 1 on any failure):

- every target of the devnet's targets file is active, up, with no scrape error;
- every member's ledger-store committed blocks during the load (rate > 0);
- every alert rule evaluates without an error;
- the series the alerts and dashboards are built on are there (RED histograms,
  fsync, proposal-to-commit, admission queue, NATS connection, ...);
- every fiscus_* metric name Prometheus scraped is listed in metric-names.txt.

Standard library only.
"""

import argparse
import json
import sys
import urllib.parse
import urllib.request

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}")
        if detail:
            for line in str(detail).splitlines():
                print(f"     {line}")


def api(base, path, **params):
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=20) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def query(base, promql):
    return api(base, "/api/v1/query", query=promql)["result"]


def listed_names(path):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.add(line.split()[0])
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--targets", required=True, help="the devnet's prometheus-targets.json")
    ap.add_argument("--names", required=True, help="observability/metric-names.txt")
    args = ap.parse_args()
    base = args.prometheus.rstrip("/")

    with open(args.targets, encoding="utf-8") as f:
        groups = json.load(f)
    expected = {t for g in groups for t in g["targets"]}
    members = sorted({g["labels"]["member"] for g in groups if "member" in g["labels"]})

    active = api(base, "/api/v1/targets", state="active")["activeTargets"]
    seen = {t["discoveredLabels"].get("__address__") for t in active}
    check(f"all {len(expected)} devnet targets are scraped", expected <= seen,
          f"missing: {sorted(expected - seen)}")
    bad = [f'{t["labels"].get("component")} {t["labels"].get("member", t["labels"].get("orderer", ""))} '
           f'{t["scrapeUrl"]}: {t["health"]} {t["lastError"]}'
           for t in active if t["health"] != "up" or t["lastError"]]
    check("every target is up, with no scrape error", not bad, "\n".join(bad))

    rates = {r["metric"].get("member"): float(r["value"][1]) for r in query(
        base, 'sum by (member) (rate(fiscus_ledger_blocks_committed_total{component="ledger-store"}[1m]))')}
    slow = [m for m in members if rates.get(m, 0.0) <= 0.0]
    check(f"every member ({len(members)}) commits blocks: rate over 1 m above zero", not slow,
          f"no commits at {slow}; rates {rates}")

    groups_ = api(base, "/api/v1/rules")["groups"]
    rules = [r for g in groups_ for r in g["rules"]]
    broken = [f'{r["name"]}: {r.get("health")} {r.get("lastError", "")}' for r in rules
              if r.get("health") != "ok"]
    check(f"all {len(rules)} alert rules evaluate without an error", rules and not broken,
          "\n".join(broken) or "no rules loaded")

    # Series the alerts and dashboards use, which the load must have produced.
    wanted = {
        "REST requests at Hebei's adapter":
            'sum(fiscus_http_server_request_duration_seconds_count{component="exchange-adapter", member="130000"}) > 0',
        "gRPC calls answered OK":
            'sum(fiscus_grpc_server_request_duration_seconds_count{grpc_code="OK"}) > 0',
        "ledger fsyncs (fjall)": 'sum(fiscus_store_fsync_seconds_count{store="fjall"}) > 0',
        "Raft fsyncs": 'sum(fiscus_store_fsync_seconds_count{store="raft", component="orderer"}) > 0',
        "proposal-to-commit on the leader": 'sum(fiscus_orderer_proposal_commit_seconds_count) > 0',
        "admission queue depth at every orderer": 'count(fiscus_orderer_admission_queue_depth) == 3',
        f"NATS connected at every gateway ({len(members)})":
            f'count(fiscus_nats_connected{{component="gossip-gateway"}} == 1) == {len(members)}',
        "finality at every member":
            f'count(fiscus_gossip_final_height{{component="gossip-gateway"}} > 0) == {len(members)}',
    }
    for name, promql in wanted.items():
        result = query(base, promql)
        check(f"{name}: {promql}", bool(result), "empty result")

    names = set(api(base, "/api/v1/label/__name__/values"))
    listed = listed_names(args.names)
    unlisted = sorted(n for n in names if n.startswith("fiscus_") and n not in listed)
    check(f"every scraped fiscus_* name ({len([n for n in names if n.startswith('fiscus_')])}) is in metric-names.txt",
          not unlisted, "\n".join(unlisted))

    # The /metrics target (50 ms at peak load) is reported, not asserted: a debug
    # build on a shared machine says little about a release build's latency.
    slowest = query(base, "max by (component) (max_over_time(scrape_duration_seconds[5m]))")
    print("info /metrics answer time, slowest scrape by component (debug build): " + ", ".join(
        f'{r["metric"].get("component")} {float(r["value"][1]) * 1000:.1f} ms'
        for r in sorted(slowest, key=lambda r: r["metric"].get("component", ""))))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
