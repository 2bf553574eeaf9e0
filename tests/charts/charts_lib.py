"""Shared helpers for the chart unit tests: render a chart with `helm template`
(cached), and pick objects, pods and service configs out of the result."""

import functools
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = os.environ.get("HELM", "helm")
K8S_VERSION = os.environ.get("K8S_VERSION", "1.31.0")
NAMESPACE = "fiscus"
# The charts of the services (each renders service TOML configs); the operator's chart apart.
CHARTS = ("fiscus-member", "fiscus-orderer", "fiscus-ca")
OPERATOR = "fiscus-operator"
ALL_CHARTS = CHARTS + (OPERATOR,)
RELEASE = {"fiscus-member": "fiscus-130000", "fiscus-orderer": "fiscus-orderer", "fiscus-ca": "fiscus-ca",
           OPERATOR: "fiscus-operator"}


def values_matrix(charts=CHARTS):
    """(chart, values file relative to the repo) for every ci/*-values.yaml
    and every Hebei example, the same matrix run.sh lints and validates."""
    out = []
    for chart in charts:
        for f in sorted((REPO / "charts" / chart / "ci").glob("*-values.yaml")):
            out.append((chart, str(f.relative_to(REPO))))
    if "fiscus-member" in charts:
        for f in sorted((REPO / "k8s/examples/hebei").glob("member-*.yaml")):
            out.append(("fiscus-member", str(f.relative_to(REPO))))
    return out


def release_for(chart, values_file=None):
    m = re.search(r"member-(\d{6})\.yaml$", values_file or "")
    return f"fiscus-{m.group(1)}" if m else RELEASE[chart]


def helm_template(chart, values=(), sets=(), set_strings=()):
    """Runs `helm template`; returns the CompletedProcess (never raises)."""
    cmd = [HELM, "template", release_for(chart, values[0] if values else None),
           str(REPO / "charts" / chart), "-n", NAMESPACE, "--kube-version", K8S_VERSION]
    for v in values:
        cmd += ["-f", str(REPO / v)]
    for s in sets:
        cmd += ["--set", s]
    for s in set_strings:
        cmd += ["--set-string", s]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)


@functools.lru_cache(maxsize=None)
def render(chart, values=(), sets=()):
    """The rendered objects (dicts) of a chart; raises with helm's message on failure."""
    out = helm_template(chart, values, sets)
    if out.returncode:
        raise AssertionError(f"helm template {chart} {values} {sets} failed:\n{out.stderr}")
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(docs):
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def pod_template(w):
    return w["spec"]["template"]


def containers(w, init=True):
    spec = pod_template(w)["spec"]
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def selects(selector, labels):
    """Whether a matchLabels selector selects these labels."""
    return all(labels.get(k) == v for k, v in selector.items())


def service_configs(docs):
    """{config file name: parsed TOML} of every rendered ConfigMap key ending in .toml."""
    out = {}
    for cm in of_kind(docs, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            if key.endswith(".toml"):
                out[key] = tomllib.loads(text)
    return out


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_config(fiscus, service, text, path, label):
    """Writes `text` to `path` and runs `fiscus <service> --check-config` on it
    (referenced files not opened); prints an ok/FAIL line; returns whether it passed."""
    path.write_text(text)
    r = subprocess.run([fiscus, service, "--check-config", str(path), "--skip-files"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        print(f"ok   {label}")
        return True
    print(f"FAIL {label}: {r.stderr.strip() or r.stdout.strip()}")
    return False


def assert_hardened_container(tc, sc):
    """The container securityContext every chart sets: non-root, read-only
    root filesystem, no privilege escalation, no capabilities, seccomp."""
    tc.assertTrue(sc["runAsNonRoot"])
    tc.assertTrue(sc["readOnlyRootFilesystem"])
    tc.assertFalse(sc["allowPrivilegeEscalation"])
    tc.assertFalse(sc.get("privileged", False))
    tc.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
    tc.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
