#!/usr/bin/env python3
"""Checks of observability/ that promtool alone does not do. Run by observability/test.sh.

- Every PromQL expression in the alert rules and the Grafana dashboards parses (each one
  is put in a generated rule file and checked with `promtool check rules`) and uses only
  metric names from metric-names.txt (exported today), metric-names-proposed.txt (not yet:
  a warning lists the ones used) and the series Prometheus adds itself (up, scrape_*).
- metric-names.txt matches the metric names registered in services/*/src, and every
  proposed name is documented in MISSING-METRICS.md.
- Every alert has severity, summary, description and a runbook_url naming an existing
  docs/runbooks/<alert>.md with its three sections; unit tests that expect it to fire and
  to stay quiet; and those tests fail when the alert's expression never fires.
- The scrape configs' relabelling gives the labels the rules and dashboards use
  (`promtool check service-discovery` on example targets), the dashboards are what
  grafana/dashboards.py generates, and otel-collector.yaml is consistent.

Prints one line per check ("ok   ..." or "FAIL ...") and, last, "RESULT <passed> <failed>".

    python3 observability/check.py --compare-scrape http://127.0.0.1:41871/metrics ...
compares metric-names.txt with what running services serve (e.g. a devnet's URLs).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROM = os.path.join(HERE, "prometheus")
RULE_FILES = sorted(glob.glob(os.path.join(PROM, "rules", "*.yml")))
TEST_FILES = sorted(glob.glob(os.path.join(PROM, "tests", "*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(HERE, "grafana", "*.json")))
RUNBOOKS = os.path.join(ROOT, "docs", "runbooks")

# Series Prometheus itself writes for every target or alert.
SYNTHETIC = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
    "ALERTS", "ALERTS_FOR_STATE",
}
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_SECTIONS = ["## What it means", "## How to confirm", "## What to do"]


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}")
            for line in str(detail).strip().splitlines():
                print(f"     {line}")
        return ok


def read_names(path):
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line.split()[0])
    return names


def base_name(name, names):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] + "_bucket" in names:
            return name[: -len(suffix)]
    return name


# ---------------------------------------------------------------- PromQL names

TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![\w.]))
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@:])
""", re.VERBOSE)

KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize at {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def metric_names(expr):
    """The metric names an expression selects (a lexer-level walk; promtool checks syntax)."""
    toks = tokens(expr)
    names = set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if text == "{":
            # Label matchers: label names are not metrics, except {__name__="..."}.
            j = i + 1
            while j < len(toks) and toks[j][1] != "}":
                if (toks[j][1] == "__name__" and j + 2 < len(toks)
                        and toks[j + 1][1] == "=" and toks[j + 2][0] == "str"):
                    names.add(toks[j + 2][1][1:-1])
                j += 1
            i = j + 1
            continue
        if text == "[":
            # A range or subquery: durations only, e.g. [5m] or [1h:1m].
            while i < len(toks) and toks[i][1] != "]":
                i += 1
            i += 1
            continue
        if kind == "ident":
            low = text.lower()
            if low in LABEL_LISTS and nxt == "(":
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    j += 1
                i = j + 1
                continue
            # A function or aggregation: `rate(`, `sum(`, `sum by (...)`.
            if low in KEYWORDS or nxt == "(" or (nxt or "").lower() in ("by", "without"):
                i += 1
                continue
            names.add(text)
        i += 1
    return names


def grafana_to_promql(expr):
    """Replaces Grafana's variables with values that keep the expression valid PromQL."""
    for var, value in (("__rate_interval", "5m"), ("__interval", "1m"), ("__range", "1h")):
        expr = expr.replace("${" + var + "}", value).replace("$" + var, value)
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", "x", expr)
    return expr


def collect_exprs():
    """(where, promql) for every expression in the rules and dashboards."""
    out = []
    for path in RULE_FILES:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record")
                out.append((f"rule {name}", rule["expr"]))
    for path in DASHBOARDS:
        board = json.load(open(path, encoding="utf-8"))
        short = os.path.basename(path)

        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))

        for p in panels(board.get("panels", [])):
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((f"{short} panel {p['title']!r} {t['refId']}",
                                grafana_to_promql(t["expr"])))
        for v in board.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"\s*(?:label_values|query_result)\((.*?)(?:,\s*\w+)?\)\s*", q)
            if m and m.group(1).strip():
                out.append((f"{short} variable ${v['name']}", grafana_to_promql(m.group(1))))
    return out


def promtool_parse(exprs):
    """Returns {index: error} for the expressions promtool cannot parse."""
    def run(batch):
        rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in batch]
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}, f)
        try:
            p = subprocess.run(["promtool", "check", "rules", f.name],
                               capture_output=True, text=True)
            return p.returncode, p.stdout + p.stderr
        finally:
            os.unlink(f.name)

    indexed = list(enumerate(exprs))
    code, _ = run(indexed)
    if code == 0:
        return {}
    errors = {}
    for i, e in indexed:
        code, out = run([(i, e)])
        if code != 0:
            errors[i] = out
    return errors


# ---------------------------------------------------------------- checks

def check_expressions(r, exported, proposed):
    exprs = collect_exprs()
    errors = promtool_parse([e for _, e in exprs])
    known = set(exported) | set(proposed) | SYNTHETIC
    used_proposed = set()
    for i, (where, expr) in enumerate(exprs):
        if i in errors:
            r.check(False, f"PromQL parses: {where}", errors[i])
            continue
        try:
            names = metric_names(expr)
        except ValueError as e:
            r.check(False, f"PromQL names: {where}", e)
            continue
        unknown = sorted(names - known)
        used_proposed |= names & set(proposed)
        r.check(not unknown and names, f"PromQL parses, known metrics only: {where}",
                f"unknown metric names {unknown}" if unknown else "selects no metric")
    return used_proposed, len(exprs)


def check_names_against_code(r, exported, proposed):
    literals = {}
    for path in glob.glob(os.path.join(ROOT, "services", "*", "src", "**", "*.rs"),
                          recursive=True):
        text = open(path, encoding="utf-8").read()
        text = text.split("#[cfg(test)]")[0]  # test-only registries do not count
        for m in re.finditer(r'"(fiscus_[a-z0-9_]+)"', text):
            literals.setdefault(m.group(1), os.path.relpath(path, ROOT))
    listed = {base_name(n, exported) for n in exported}
    missing = sorted(n for n in listed if n not in literals)
    r.check(not missing, "every name in metric-names.txt is registered in services/*/src",
            f"not found in the code: {missing}")
    unlisted = sorted(f"{n} ({p})" for n, p in literals.items() if n not in listed)
    r.check(not unlisted, "every metric name registered in services/*/src is in metric-names.txt",
            f"add to metric-names.txt (histograms as _bucket/_sum/_count): {unlisted}")
    prop_bases = {base_name(n, proposed) for n in proposed}
    landed = sorted(n for n in prop_bases if n in literals)
    r.check(not landed, "no proposed metric is already registered in the code",
            f"now exported, move from metric-names-proposed.txt to metric-names.txt: {landed}")
    both = sorted(set(exported) & set(proposed))
    r.check(not both, "metric-names.txt and metric-names-proposed.txt do not overlap", both)
    doc = open(os.path.join(HERE, "MISSING-METRICS.md"), encoding="utf-8").read()
    undocumented = sorted(n for n in prop_bases if f"`{n}`" not in doc)
    r.check(not undocumented, "every proposed metric is documented in MISSING-METRICS.md",
            f"undocumented: {undocumented}")


def load_alerts():
    alerts = []
    for path in RULE_FILES:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    alerts.append((path, rule))
    return alerts


def check_alert_metadata(r, alerts):
    names = [rule["alert"] for _, rule in alerts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    r.check(not dupes, "alert names are unique", dupes)
    for _, rule in alerts:
        a = rule["alert"]
        problems = []
        if rule.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"severity label not one of {sorted(SEVERITIES)}")
        ann = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not str(ann.get(key, "")).strip():
                problems.append(f"annotation {key} missing")
        url = str(ann.get("runbook_url", ""))
        if not url.endswith(f"docs/runbooks/{a}.md"):
            problems.append(f"runbook_url {url!r} does not end in docs/runbooks/{a}.md")
        rb = os.path.join(RUNBOOKS, f"{a}.md")
        if not os.path.exists(rb):
            problems.append(f"{os.path.relpath(rb, ROOT)} does not exist")
        else:
            text = open(rb, encoding="utf-8").read()
            for s in RUNBOOK_SECTIONS:
                if s not in text:
                    problems.append(f"runbook lacks the section {s!r}")
            if not text.startswith(f"# {a}"):
                problems.append(f"runbook does not start with '# {a}'")
        r.check(not problems, f"alert {a}: severity, annotations, runbook", "\n".join(problems))
    orphans = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(RUNBOOKS, "*.md"))
                     if os.path.basename(p)[:-3] not in names
                     and os.path.basename(p) != "README.md")
    r.check(not orphans, "every runbook belongs to an alert", f"no such alert: {orphans}")


def check_alert_tests(r, alerts):
    cases = {}  # alert -> (files, fires, quiet)
    for path in TEST_FILES:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                a = case["alertname"]
                files, fires, quiet = cases.setdefault(a, (set(), [0], [0]))
                files.add(path)
                if case.get("exp_alerts"):
                    fires[0] += 1
                else:
                    quiet[0] += 1
    for rules_path, rule in alerts:
        a = rule["alert"]
        files, fires, quiet = cases.get(a, (set(), [0], [0]))
        ok = bool(files) and fires[0] > 0 and quiet[0] > 0
        r.check(ok, f"alert {a}: unit tests expect it to fire ({fires[0]}) and to stay quiet "
                f"({quiet[0]})", "add cases to observability/prometheus/tests/")
        if not files:
            continue
        # Mutation: the alert never fires; its tests must notice.
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "rules"))
            os.makedirs(os.path.join(tmp, "tests"))
            for rp in RULE_FILES:
                doc = yaml.safe_load(open(rp, encoding="utf-8"))
                if rp == rules_path:
                    for g in doc["groups"]:
                        for rr in g["rules"]:
                            if rr.get("alert") == a:
                                rr["expr"] = "vector(1) == 0"
                with open(os.path.join(tmp, "rules", os.path.basename(rp)), "w") as f:
                    yaml.safe_dump(doc, f, sort_keys=False)
            copies = []
            for tp in sorted(files):
                dst = os.path.join(tmp, "tests", os.path.basename(tp))
                shutil.copy(tp, dst)
                copies.append(dst)
            p = subprocess.run(["promtool", "test", "rules", *copies],
                               capture_output=True, text=True)
            r.check(p.returncode != 0, f"alert {a}: its tests fail when it never fires",
                    "the tests pass with the alert disabled: they do not test that it fires")


def promtool_sd(config, job, cwd):
    p = subprocess.run(["promtool", "check", "service-discovery", "--timeout=1s", config, job],
                       capture_output=True, text=True, cwd=cwd)
    start = p.stdout.find("[")
    if p.returncode != 0 or start < 0:
        raise RuntimeError(p.stdout + p.stderr)
    return json.loads(p.stdout[start:])


def public(labels):
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def check_devnet_scrape(r):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(PROM, "devnet-scrape.yml"), tmp)
        shutil.copytree(os.path.join(PROM, "rules"), os.path.join(tmp, "rules"))
        os.makedirs(os.path.join(tmp, "targets"))
        example = json.load(open(os.path.join(PROM, "targets", "devnet.json.example")))
        example.append({"targets": ["127.0.0.1:9"], "labels": {}})
        json.dump(example, open(os.path.join(tmp, "targets", "devnet.json"), "w"))
        try:
            found = promtool_sd("devnet-scrape.yml", "fiscus-devnet", tmp)
        except RuntimeError as e:
            r.check(False, "devnet-scrape.yml: service discovery of targets/*.json", e)
            return
        by_addr = {t["labels"]["__address__"]: public(t["labels"])
                   for t in found if t.get("labels")}
        problems = []
        if len(by_addr) != len(example):
            problems.append(f"{len(by_addr)} targets found, {len(example)} written")
        for group in example:
            got = by_addr.get(group["targets"][0], {})
            want = dict(group["labels"], job="fiscus-devnet", instance=group["targets"][0])
            want.setdefault("component", "unknown")
            if got != want:
                problems.append(f"{group['targets'][0]}: got {got}, want {want}")
        components = {g["labels"].get("component") for g in example}
        want_components = {"identity-ca", "orderer", "ledger-store", "gossip-gateway",
                           "exchange-adapter", None}
        if components != want_components:
            problems.append(f"the example's components {components} are not a whole devnet")
        r.check(not problems, "devnet-scrape.yml: file_sd targets get job, instance, component, "
                "member, orderer (targets/devnet.json.example)", "\n".join(problems))


def k8s_pods():
    def pod(addr, name, container, port_name, phase="Running", annotations=None, labels=None):
        d = {
            "__meta_kubernetes_namespace": "fiscus",
            "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_node_name": "node-1",
            "__meta_kubernetes_pod_phase": phase,
            "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": port_name,
        }
        for k, v in (annotations or {}).items():
            d["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
        for k, v in (labels or {}).items():
            d["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
        return {"targets": [addr], "labels": d}

    chart = {"app.kubernetes.io/part-of": "fiscus"}
    ledger = dict(chart, **{"app.kubernetes.io/component": "ledger-store",
                            "fiscus.io/member": "130000"})
    orderer = dict(chart, **{"app.kubernetes.io/component": "orderer"})
    return [
        # A ledger-store pod from the member chart: its ops port, not its gRPC port.
        pod("10.0.0.5:7320", "hebei-ledger-store-0", "ledger-store", "ops", labels=ledger),
        pod("10.0.0.5:7300", "hebei-ledger-store-0", "ledger-store", "grpc", labels=ledger),
        # An orderer pod from the orderer chart.
        pod("10.0.0.6:7220", "fiscus-orderer-1", "orderer", "ops", labels=orderer),
        # A pod outside the charts that asks to be scraped, over https on port 7520.
        pod("10.0.0.7:7500", "gossip-by-hand", "gossip-gateway", "grpc",
            annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "7520",
                         "prometheus.io/path": "/metrics", "prometheus.io/scheme": "https"},
            labels={"fiscus.io/member": "130100"}),
        # Not Fiscus, not annotated; and a pending Fiscus pod.
        pod("10.0.0.8:8080", "something-else", "app", "http"),
        pod("10.0.0.9:7320", "hebei-ledger-store-1", "ledger-store", "ops", phase="Pending",
            labels=ledger),
    ]


def check_k8s_scrape(r):
    path = os.path.join(PROM, "kubernetes-scrape.yml")
    p = subprocess.run(["promtool", "check", "config", path], capture_output=True, text=True)
    out = p.stdout + p.stderr
    cfg = yaml.safe_load(open(path, encoding="utf-8"))
    if p.returncode != 0 and "kubernetes_sd_configs not found" in out:
        # Debian's promtool is built without Kubernetes service discovery: check the rest
        # of the file with the pod discovery swapped for a file of pods.
        print("     (Debian's promtool has no Kubernetes SD: checking kubernetes-scrape.yml "
              "with kubernetes_sd_configs replaced by file_sd_configs of example pods)")
        native = False
    else:
        r.check(p.returncode == 0, "promtool check config kubernetes-scrape.yml", out)
        native = True
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(PROM, "rules"), os.path.join(tmp, "rules"))
        for job in cfg["scrape_configs"]:
            job.pop("kubernetes_sd_configs", None)
            job["file_sd_configs"] = [{"files": ["pods.json"]}]
        with open(os.path.join(tmp, "k8s.yml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        json.dump(k8s_pods(), open(os.path.join(tmp, "pods.json"), "w"))
        if not native:
            p = subprocess.run(["promtool", "check", "config", "k8s.yml"],
                               capture_output=True, text=True, cwd=tmp)
            r.check(p.returncode == 0, "promtool check config kubernetes-scrape.yml "
                    "(pod discovery swapped for file_sd)", p.stdout + p.stderr)
        try:
            found = promtool_sd("k8s.yml", "fiscus-pods", tmp)
        except RuntimeError as e:
            r.check(False, "kubernetes-scrape.yml: relabelling of example pods", e)
            return
    # Dropped targets come back with no labels.
    got = {t["labels"]["__address__"]: t["labels"] for t in found if t.get("labels")}
    want = {
        "10.0.0.5:7320": {"component": "ledger-store", "member": "130000",
                          "pod": "hebei-ledger-store-0", "__scheme__": "http"},
        "10.0.0.6:7220": {"component": "orderer", "orderer": "fiscus-orderer-1",
                          "pod": "fiscus-orderer-1", "__scheme__": "http"},
        "10.0.0.7:7520": {"component": "gossip-gateway", "member": "130100",
                          "pod": "gossip-by-hand", "__scheme__": "https"},
    }
    problems = []
    if set(got) != set(want):
        problems.append(f"targets {sorted(got)}, want {sorted(want)} (a chart pod's ops "
                        "port, an annotated pod's annotated port; nothing else)")
    for addr, labels in want.items():
        g = got.get(addr, {})
        for k, v in dict(labels, namespace="fiscus", node="node-1", job="fiscus-pods").items():
            if g.get(k) != v:
                problems.append(f"{addr}: {k}={g.get(k)!r}, want {v!r}")
    r.check(not problems, "kubernetes-scrape.yml: chart pods and annotated pods become "
            "targets with component, member, orderer, namespace, pod labels",
            "\n".join(problems))


def check_dashboards(r):
    p = subprocess.run([sys.executable, os.path.join(HERE, "grafana", "dashboards.py"),
                        "--check"], capture_output=True, text=True)
    r.check(p.returncode == 0, "grafana/*.json are what grafana/dashboards.py generates",
            p.stdout + p.stderr)
    uids = []
    for path in DASHBOARDS:
        short = os.path.basename(path)
        problems = []
        try:
            board = json.load(open(path, encoding="utf-8"))
        except ValueError as e:
            r.check(False, f"{short}: valid JSON", e)
            continue
        uids.append(board.get("uid"))
        for key in ("uid", "title", "panels", "templating", "schemaVersion"):
            if key not in board:
                problems.append(f"no {key}")
        variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append("no `datasource` template variable of type datasource/prometheus")
        ids = []

        def walk(ps):
            for p_ in ps:
                yield p_
                yield from walk(p_.get("panels", []))

        for panel in walk(board.get("panels", [])):
            ids.append(panel.get("id"))
            gp = panel.get("gridPos", {})
            if gp.get("x", 0) + gp.get("w", 0) > 24:
                problems.append(f"panel {panel.get('title')!r} is wider than the grid")
            if panel.get("type") == "row":
                continue
            refs = [panel.get("datasource")] + [t.get("datasource") for t in panel["targets"]]
            if any(d != {"type": "prometheus", "uid": "${datasource}"} for d in refs):
                problems.append(f"panel {panel.get('title')!r} does not use ${{datasource}}")
            if not panel.get("targets"):
                problems.append(f"panel {panel.get('title')!r} has no query")
        for v in variables.values():
            if v.get("type") == "query" and v.get("datasource") != {
                    "type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"variable {v['name']} does not use ${{datasource}}")
        if len(ids) != len(set(ids)):
            problems.append("panel ids are not unique")
        r.check(not problems, f"{short}: Grafana dashboard with a datasource variable used by "
                f"every panel", "\n".join(problems))
    r.check(len(uids) == len(set(uids)) and len(uids) >= 4,
            "dashboards: four or more, unique uids", uids)


def check_otel(r):
    path = os.path.join(HERE, "otel-collector.yaml")
    try:
        cfg = yaml.safe_load(open(path, encoding="utf-8"))
    except yaml.YAMLError as e:
        r.check(False, "otel-collector.yaml parses", e)
        return
    problems = []
    svc = cfg.get("service", {})
    for kind in ("receivers", "processors", "exporters"):
        defined = set(cfg.get(kind) or {})
        for name, pipe in svc.get("pipelines", {}).items():
            for c in pipe.get(kind, []):
                if c not in defined:
                    problems.append(f"pipeline {name} uses undefined {kind[:-1]} {c}")
    for e in svc.get("extensions", []):
        if e not in (cfg.get("extensions") or {}):
            problems.append(f"undefined extension {e}")
    traces = svc.get("pipelines", {}).get("traces", {})
    if "otlp" not in traces.get("receivers", []):
        problems.append("traces pipeline does not receive OTLP")
    procs = traces.get("processors", [])
    if "tail_sampling" not in procs or "batch" not in procs:
        problems.append("traces pipeline lacks tail_sampling or batch")
    elif procs.index("tail_sampling") > procs.index("batch"):
        problems.append("tail_sampling must come before batch")
    if not any(e.split("/")[0] == "otlp" for e in traces.get("exporters", [])):
        problems.append("traces are not exported over OTLP")
    if not any(e.split("/")[0] == "prometheus"
               for p in svc.get("pipelines", {}).values() for e in p.get("exporters", [])):
        problems.append("no pipeline exports to the prometheus exporter")
    policies = (cfg.get("processors", {}).get("tail_sampling") or {}).get("policies", [])
    types = {p.get("type") for p in policies}
    if not any("fiscus.tx_status" in json.dumps(p) for p in policies):
        problems.append("no tail-sampling policy keeps rejected transactions (fiscus.tx_status)")
    if not any(p.get("type") == "status_code"
               and "ERROR" in p.get("status_code", {}).get("status_codes", [])
               for p in policies):
        problems.append("no tail-sampling policy keeps ERROR traces")
    if "probabilistic" not in types:
        problems.append("no probabilistic tail-sampling policy")
    r.check(not problems, "otel-collector.yaml: OTLP in, tail sampling (rejected, errors, "
            "probabilistic), batch, OTLP and prometheus exporters", "\n".join(problems))


def compare_scrape(urls):
    exported = read_names(os.path.join(HERE, "metric-names.txt"))
    seen = set()
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line and not line.startswith("#"):
                    seen.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    unlisted = sorted(seen - set(exported))
    unseen = sorted(set(exported) - seen)
    print(f"served but not in metric-names.txt: {unlisted or 'none'}")
    print(f"in metric-names.txt but not served (a labelled counter appears only after its "
          f"first increment): {unseen or 'none'}")
    return 1 if unlisted else 0


def main():
    if sys.argv[1:2] == ["--compare-scrape"]:
        return compare_scrape(sys.argv[2:])
    r = Report()
    exported = read_names(os.path.join(HERE, "metric-names.txt"))
    proposed = read_names(os.path.join(HERE, "metric-names-proposed.txt"))
    used_proposed = set()

    def guarded(name, fn, *args):
        try:
            return fn(*args)
        except Exception:  # a bug or a malformed file: report it, keep checking
            r.check(False, f"{name} (crashed)", traceback.format_exc())
            return None

    guarded("metric names against the code", check_names_against_code, r, exported, proposed)
    used = guarded("PromQL expressions", check_expressions, r, exported, proposed)
    if used:
        used_proposed = used[0]
    alerts = guarded("alert rules", load_alerts) or []
    guarded("alert metadata and runbooks", check_alert_metadata, r, alerts)
    guarded("alert unit tests", check_alert_tests, r, alerts)
    guarded("devnet scrape config", check_devnet_scrape, r)
    guarded("kubernetes scrape config", check_k8s_scrape, r)
    guarded("dashboards", check_dashboards, r)
    guarded("otel collector config", check_otel, r)
    if used_proposed:
        bases = sorted({base_name(x, proposed) for x in used_proposed})
        print(f"WARNING: {len(bases)} proposed metrics used that no service exports yet "
              f"(see observability/MISSING-METRICS.md): {', '.join(bases)}")
    print(f"RESULT {r.passed} {r.failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
