"""The operator against the member chart, for every FinanceMember of the Hebei
operator example (k8s/examples/hebei/operator/members.yaml with
consortium.yaml), as `fiscus-operator render` prints its objects:

  1. every service config in its ConfigMaps is accepted by `fiscus <service>
     --check-config FILE --skip-files`, as check_configs.py does for the
     charts' (the files they name are Secrets mounted at run time);
  2. its four workloads and their Services are the member chart's, rendered
     with the values that say what the FinanceMember says (member_values):
     image, args, ports, probes, security contexts, mounts, volume sources,
     the ledger's volume claim, Service ports and types. Fields where the two
     legitimately differ are left out below, each with the reason. Not
     compared: the configs' contents (1. checks them), the
     PodDisruptionBudgets, NetworkPolicies and the Ingress;
  3. with `--service-monitor` and metrics.serviceMonitor.enabled, its
     ServiceMonitor and metrics Service are the chart's (compare_monitor).

Needs both binaries: FISCUS_BIN (default target/debug/fiscus) and
FISCUS_OPERATOR_BIN (default target/debug/fiscus-operator), and helm.
check_configs.py runs this; alone: python3 tests/charts/check_operator.py."""

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from charts_lib import (NAMESPACE, REPO, check_config, of_kind, pod_template, render,  # noqa: E402
                        selects, workloads)

MEMBER = "fiscus-member"
EXAMPLES = REPO / "k8s/examples/hebei/operator"
WORKLOADS = {"ledger-store": "StatefulSet", "contract-executor": "Deployment",
             "gossip-gateway": "Deployment", "exchange-adapter": "Deployment"}
# The Services of a member, by the suffix after fiscus-<code>-.
SERVICES = ("ledger-store-headless", "ledger-store", "contract-executor", "gossip-gateway",
            "exchange-adapter")


def operator_bin():
    return os.environ.get("FISCUS_OPERATOR_BIN", str(REPO / "target" / "debug" / "fiscus-operator"))


def members():
    return [d for d in yaml.safe_load_all((EXAMPLES / "members.yaml").read_text()) if d]


def operator_render(member, tmp, consortium=EXAMPLES / "consortium.yaml", *flags):
    """The objects `fiscus-operator render` prints for one FinanceMember."""
    f = Path(tmp) / f"financemember-{member['spec']['code']}.yaml"
    f.write_text(yaml.safe_dump(member, allow_unicode=True))
    r = subprocess.run([operator_bin(), "render", "--member", str(f),
                        "--consortium", str(consortium), "--namespace", NAMESPACE, *flags],
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise AssertionError(f"fiscus-operator render {member['metadata']['name']} failed:\n{r.stderr}")
    return tuple(d for d in yaml.safe_load_all(r.stdout) if d)


def member_values(member, consortium):
    """Member chart values saying what a FinanceMember and its Consortium say."""
    m, c = member["spec"], consortium["spec"]
    code = m["code"]
    values = {
        "member": {"code": code, "name": m["nameZh"]},
        # Object names fiscus-<code>-<service>, as the operator's.
        "fullnameOverride": f"fiscus-{code}",
        "image": {"repository": c["image"]["repository"], "tag": c["image"]["tag"],
                  "pullPolicy": c["image"].get("pullPolicy", "IfNotPresent")},
        "tls": {"secretName": f"fiscus-{code}-node-tls"},
        "genesis": {k: c["genesis"][k] for k in ("kind", "name", "key")},
        "signers": {"configMapName": c["signersConfigMap"]},
        "orderers": [{"addr": o["endpoint"], "server_name": o["serverName"]} for o in c["orderers"]],
        "nats": {"url": c.get("natsUrl", "")},
        "ledgerStore": {"persistence": {"size": m.get("storage", {}).get("size", "50Gi"),
                                        "storageClass": m.get("storage", {}).get("storageClassName", "")}},
        "contractExecutor": {"enabled": True},
        "gossipGateway": {"service": {"type": m.get("gateway", {}).get("serviceType", "ClusterIP")}},
        "exchangeAdapter": {
            "clientsSecretName": f"fiscus-{code}-api-clients",
            "service": {"type": m.get("api", {}).get("serviceType", "ClusterIP")},
            "ingress": {"enabled": "ingressHost" in m.get("api", {}),
                        "host": m.get("api", {}).get("ingressHost", "api.fiscus.example"),
                        "className": m.get("api", {}).get("ingressClassName", "")},
        },
    }
    if "apiEnrollmentSecretRef" in m:
        # The operator's Secret of the member's client identity, mounted as the chart mounts it.
        values["exchangeAdapter"]["custodialSecretName"] = f"fiscus-{code}-client-tls"
    if "serviceMonitorLabels" in c:
        values["metrics"] = {"serviceMonitor": {"labels": c["serviceMonitorLabels"]}}
    if "resources" in m:
        for key in ("ledgerStore", "contractExecutor", "gossipGateway", "exchangeAdapter"):
            values[key]["resources"] = m["resources"]
    return values


def chart_render(member, consortium, tmp, sets=()):
    """The member chart rendered with member_values; the release is fiscus-<code>
    (charts_lib.release_for reads it off the file name), so selectors match."""
    f = Path(tmp) / f"operator-member-{member['spec']['code']}.yaml"
    f.write_text(yaml.safe_dump(member_values(member, consortium), allow_unicode=True))
    return render(MEMBER, (str(f),), sets)


def find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found[0] if len(found) == 1 else None


def probe(p):
    """What a probe checks and how patiently."""
    if p is None:
        return None
    return {"path": p["httpGet"]["path"], "port": p["httpGet"]["port"],
            **{k: p.get(k) for k in ("periodSeconds", "timeoutSeconds", "failureThreshold")}}


def volume_source(name, spec, claims):
    """Where the volume a mount names comes from: configMap/secret (with its
    mode), emptyDir (with its limit), or a volumeClaimTemplate."""
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if name in vols:
        v = vols[name]
        if "configMap" in v:
            return ("configMap", v["configMap"]["name"])
        if "secret" in v:
            return ("secret", v["secret"]["secretName"], v["secret"].get("defaultMode"))
        if "emptyDir" in v:
            return ("emptyDir", (v["emptyDir"] or {}).get("sizeLimit"))
        if "persistentVolumeClaim" in v:
            return ("persistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
        return ("other", sorted(k for k in v if k != "name"))
    if name in claims:
        return ("volumeClaimTemplate", name)
    return None


def workload_fields(w, compare_resources):
    """The fields of a workload that must be the same however it was made, by name.

    Left out, because they legitimately differ:
      - metadata labels and annotations: the chart adds helm.sh/chart and
        app.kubernetes.io/version and says managed-by Helm, the operator says
        fiscus-operator and adds fiscus.io/applied-hash;
      - pod annotations: the operator adds checksum/tls (its own rollout on a
        renewed certificate), and each hashes its own config text for
        checksum/config;
      - pod labels: managed-by and the chart's extra labels, as above (the
        selectors, which routing depends on, are compared);
      - serviceAccountName: the chart creates a ServiceAccount per member, the
        operator runs the pods under the namespace's default one; neither
        mounts its token (automountServiceAccountToken is compared);
      - resources, unless the FinanceMember sets them: the operator's default
        is one small request for every service, the chart's are per service."""
    spec = w["spec"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
    out = {
        "replicas": spec.get("replicas", 1),
        "strategy": (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if w["kind"] == "Deployment" else None,
        "serviceName": spec.get("serviceName"),
        "selector.matchLabels": spec["selector"]["matchLabels"],
        "pod automountServiceAccountToken": pod.get("automountServiceAccountToken"),
        "pod terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds", 30),
        "pod securityContext": pod.get("securityContext"),
        "pod imagePullSecrets": pod.get("imagePullSecrets", []),
        "initContainers": [i["name"] for i in pod.get("initContainers", [])],
        "container name": c["name"],
        "container image": c["image"],
        "container imagePullPolicy": c.get("imagePullPolicy"),
        "container args": c.get("args"),
        "container command": c.get("command"),
        "container workingDir": c.get("workingDir"),
        "container env": c.get("env") or [],
        "container ports": sorted(p["name"] for p in c.get("ports", [])),
        "container securityContext": c.get("securityContext"),
        "volumeMounts": sorted(m["name"] for m in c.get("volumeMounts", [])),
        "volumes": sorted({v["name"] for v in pod.get("volumes", [])} | set(claims)),
    }
    # One field per port, mount and volume, so that a difference names it.
    for p in c.get("ports", []):
        out[f"container port {p['name']}"] = p["containerPort"]
    for m in c.get("volumeMounts", []):
        out[f"volumeMount {m['name']}"] = {"mountPath": m["mountPath"],
                                           "readOnly": bool(m.get("readOnly", False))}
    for name in out["volumes"]:
        out[f"volume {name}"] = volume_source(name, pod, claims)
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        out[f"container {kind}"] = probe(c.get(kind))
    if compare_resources:
        out["container resources"] = c.get("resources")
    for name, t in claims.items():
        out[f"volumeClaimTemplate {name}"] = {
            "accessModes": t["spec"].get("accessModes"),
            "storageClassName": t["spec"].get("storageClassName"),
            "size": t["spec"]["resources"]["requests"]["storage"],
        }
    return out


def service_fields(s):
    """The fields of a Service that must be the same (labels and annotations
    left out, as for the workloads)."""
    spec = s["spec"]
    return {
        "type": spec.get("type", "ClusterIP"),
        "clusterIP": spec.get("clusterIP"),
        "publishNotReadyAddresses": spec.get("publishNotReadyAddresses", False),
        "selector": spec.get("selector"),
        "ports": sorted(p["name"] for p in spec.get("ports", [])),
    } | {f"port {p['name']}": {"port": p["port"], "targetPort": p.get("targetPort", p["port"]),
                               "nodePort": p.get("nodePort")}
         for p in spec.get("ports", [])}


def differences(chart, operator):
    """'field: chart X, operator Y' for every field the two views disagree on."""
    return [f"{field}: chart {chart.get(field)!r}, operator {operator.get(field)!r}"
            for field in sorted(set(chart) | set(operator), key=str)
            if chart.get(field) != operator.get(field)]


def compare_member(member, consortium, operator_docs, chart_docs):
    """(objects compared, fields compared, failures) of one member."""
    code = member["spec"]["code"]
    objects, fields, failures = 0, 0, []
    checks = [(kind, f"fiscus-{code}-{c}", workload_fields) for c, kind in WORKLOADS.items()]
    checks += [("Service", f"fiscus-{code}-{s}", service_fields) for s in SERVICES]
    for kind, name, view in checks:
        ours, theirs = find(chart_docs, kind, name), find(operator_docs, kind, name)
        missing = [who for who, d in (("chart", ours), ("operator", theirs)) if d is None]
        if missing:
            failures.append(f"{kind} {name}: not rendered by the {' and the '.join(missing)}")
            continue
        args = ("resources" in member["spec"],) if view is workload_fields else ()
        a, b = view(ours, *args), view(theirs, *args)
        objects += 1
        fields += len(a)
        failures += [f"{kind} {name}: {d}" for d in differences(a, b)]
    return objects, fields, failures


def compare_monitor(member, consortium, operator_docs, chart_docs):
    """Failures of the ServiceMonitor path: each side renders a ServiceMonitor
    fiscus-<code> carrying the Consortium's serviceMonitorLabels and a Service
    fiscus-<code>-metrics it selects, which selects every pod of the member;
    the monitors' selector, namespaceSelector and endpoints and the Services'
    clusterIP, ports and selector are the same."""
    code, extra = member["spec"]["code"], consortium["spec"].get("serviceMonitorLabels", {})
    metrics = f"fiscus-{code}-metrics"
    failures, views = [], {}
    for who, docs in (("chart", chart_docs), ("operator", operator_docs)):
        sm, svc = find(docs, "ServiceMonitor", f"fiscus-{code}"), find(docs, "Service", metrics)
        if sm is None or svc is None:
            failures.append(f"{who}: no ServiceMonitor fiscus-{code} and Service {metrics}")
            continue
        if not selects(extra, sm["metadata"].get("labels", {})):
            failures.append(f"{who}: the ServiceMonitor lacks the labels {extra}")
        if not selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})):
            failures.append(f"{who}: the ServiceMonitor does not select Service {metrics}")
        failures += [f"{who}: Service {metrics} does not select the pods of {w['metadata']['name']}"
                     for w in workloads(docs)
                     if not selects(svc["spec"]["selector"], pod_template(w)["metadata"]["labels"])]
        views[who] = ({f"ServiceMonitor {k}": sm["spec"].get(k)
                       for k in ("selector", "namespaceSelector", "endpoints")}
                      | {f"Service {k}": svc["spec"].get(k) for k in ("clusterIP", "ports", "selector")})
    return failures + (differences(views["chart"], views["operator"]) if len(views) == 2 else [])


def sees_a_change(member, consortium, operator_docs, chart_docs):
    """The comparison, run on operator objects changed in three places, must
    name those three fields: one that passes everything proves nothing."""
    code = member["spec"]["code"]
    docs = copy.deepcopy(operator_docs)
    ledger = find(docs, "StatefulSet", f"fiscus-{code}-ledger-store")
    ledger["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][1]["mountPath"] = "/etc/tls"
    ledger["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "1Gi"
    find(docs, "Service", f"fiscus-{code}-gossip-gateway")["spec"]["ports"][0]["port"] = 7501
    _, _, failures = compare_member(member, consortium, docs, chart_docs)
    wanted = ("volumeMount tls", "volumeClaimTemplate data", "port gossip")
    return len(failures) == len(wanted) and all(any(f": {w}: " in x for x in failures) for w in wanted)


def check_configs(fiscus, name, docs, tmp):
    """(passed, failed) of `fiscus <service> --check-config` over the configs in docs."""
    passed, failed = 0, 0
    for cm in of_kind(docs, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            service = key.removesuffix(".toml")
            if not key.endswith(".toml"):
                continue
            f = Path(tmp) / f"operator-{name}-{cm['metadata']['name']}-{key}"
            label = f"fiscus-operator render {name} {cm['metadata']['name']}/{key}"
            if check_config(fiscus, service, text, f, label):
                passed += 1
            else:
                failed += 1
    return passed, failed


def run(fiscus, tmp):
    """Both checks over every example member; prints ok/FAIL lines and a
    summary line; returns (passed, failed)."""
    operator = operator_bin()
    if not os.access(operator, os.X_OK):
        print(f"FAIL {operator} is missing; build it with 'cargo build -p fiscus-operator'")
        return 0, 1
    consortium = yaml.safe_load((EXAMPLES / "consortium.yaml").read_text())
    # The ServiceMonitor path, with a label a Prometheus would select on.
    monitored = copy.deepcopy(consortium)
    monitored["spec"]["serviceMonitorLabels"] = {"release": "kube-prometheus-stack"}
    monitored_file = Path(tmp) / "consortium-monitored.yaml"
    monitored_file.write_text(yaml.safe_dump(monitored, allow_unicode=True))
    passed, failed, objects, fields, seen, controlled = 0, 0, 0, 0, set(), False
    for member in members():
        name = member["metadata"]["name"]
        try:
            operator_docs = operator_render(member, tmp)
            chart_docs = chart_render(member, consortium, tmp)
            monitor_docs = (operator_render(member, tmp, monitored_file, "--service-monitor"),
                            chart_render(member, monitored, tmp, ("metrics.serviceMonitor.enabled=true",)))
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}")
            continue
        p, f = check_configs(fiscus, name, operator_docs, tmp)
        passed, failed = passed + p, failed + f
        seen |= {k.removesuffix(".toml") for cm in of_kind(operator_docs, "ConfigMap") for k in cm["data"]}
        if not controlled:
            controlled = True
            if sees_a_change(member, consortium, operator_docs, chart_docs):
                passed += 1
                print("ok   the comparison sees a changed mount path, claim size and Service port")
            else:
                failed += 1
                print("FAIL the comparison misses a changed mount path, claim size or Service port")
        o, n, failures = compare_member(member, consortium, operator_docs, chart_docs)
        objects, fields = objects + o, fields + n
        monitor_failures = compare_monitor(member, monitored, *monitor_docs)
        if of_kind(operator_docs, "ServiceMonitor"):
            monitor_failures.append("operator: a ServiceMonitor without --service-monitor")
        for label, fs in ((f"{name} (4 workloads, {len(SERVICES)} Services)", failures),
                          (f"{name} ServiceMonitor and metrics Service", monitor_failures)):
            label = f"operator = chart {label}"
            if fs:
                failed += 1
                print(f"FAIL {label}:" + "".join(f"\n     {x}" for x in fs))
            else:
                passed += 1
                print(f"ok   {label}")
    missing = set(WORKLOADS) - seen
    if missing:
        failed += 1
        print(f"FAIL fiscus-operator renders no config for: {', '.join(sorted(missing))}")
    print(f"operator vs chart: {len(members())} FinanceMembers, {objects} objects (StatefulSet, "
          f"Deployments, Services), {fields} fields compared: image, args, ports, probes, security "
          f"contexts, mounts, volume sources, claim, Service ports and types; not labels, "
          f"annotations, serviceAccountName, default resources; and each member's ServiceMonitor "
          f"and metrics Service")
    return passed, failed


def main():
    fiscus = os.environ.get("FISCUS_BIN", str(REPO / "target" / "debug" / "fiscus"))
    if not os.access(fiscus, os.X_OK):
        print(f"check_operator.py: {fiscus} is missing; build it with 'cargo build -p fiscus'",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        passed, failed = run(fiscus, tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
