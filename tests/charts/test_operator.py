"""Unit tests of the operator's chart (charts/fiscus-operator) over its
rendered YAML: a hardened pod that runs `fiscus-operator run`, its probes and
downward-API environment, least-privilege RBAC (the exact ClusterRole, the
Lease only in a namespaced Role, no wildcard anywhere), the disruption
budget, the metrics objects, the values schema; the CRDs it ships as a copy
of k8s/crds/; and the operator's example resources in k8s/examples/hebei/operator/."""

import re
import subprocess
import tempfile
import unittest

import yaml

from charts_lib import (assert_hardened_container, ALL_CHARTS, HELM, K8S_VERSION, NAMESPACE, OPERATOR, REPO, containers,
                        helm_template, named, of_kind, pod_template, render, selects, values_matrix,
                        workloads)

RELEASE = "fiscus-operator"
ALL_ON = ("charts/fiscus-operator/ci/all-enabled-values.yaml",)
CRD_SOURCE = REPO / "k8s/crds/fiscus.io.yaml"
CRD_CHART_COPY = REPO / "charts/fiscus-operator/crds/fiscus.io.yaml"
OPERATOR_MAIN = REPO / "operator/src/main.rs"
OPERATOR_CRD = REPO / "operator/src/crd.rs"
EXAMPLES = REPO / "k8s/examples/hebei/operator"
OPS_PORT = 9490

# The ClusterRole, rule for rule: (apiGroup, resource, verb).
CLUSTER_RULES = [
    (["fiscus.io"], ["financemembers"], ["get", "list", "watch", "patch"]),
    (["fiscus.io"], ["financemembers/status"], ["get", "patch"]),
    (["fiscus.io"], ["financemembers/finalizers"], ["update"]),
    (["fiscus.io"], ["consortiums"], ["get", "list", "watch"]),
    ([""], ["secrets"], ["get", "list", "watch", "create", "patch", "delete"]),
    ([""], ["configmaps"], ["get", "list", "watch", "patch"]),
    ([""], ["services"], ["get", "list", "watch", "patch"]),
    ([""], ["persistentvolumeclaims"], ["get", "delete"]),
    (["apps"], ["statefulsets", "deployments"], ["get", "list", "watch", "patch"]),
    (["policy"], ["poddisruptionbudgets"], ["get", "patch"]),
    (["networking.k8s.io"], ["networkpolicies", "ingresses"], ["get", "patch"]),
    (["events.k8s.io"], ["events"], ["create", "patch"]),
    (["monitoring.coreos.com"], ["servicemonitors"], ["get", "patch"]),
]
LEASE_RULE = (["coordination.k8s.io"], ["leases"], ["get", "create", "patch"])


def triples(rules):
    """The (apiGroup, resource, verb) set that RBAC rules grant."""
    out = set()
    for r in rules:
        groups, resources, verbs = (r["apiGroups"], r["resources"], r["verbs"]) if isinstance(r, dict) else r
        out |= {(g, res, v) for g in groups for res in resources for v in verbs}
    return out


def renderings():
    """(values file, rendered objects) of the operator chart over its ci/*-values.yaml."""
    for _, values in values_matrix((OPERATOR,)):
        yield values, render(OPERATOR, (values,))


def operator_deployment(docs):
    (dep,) = of_kind(docs, "Deployment")
    return dep


def operator_container(docs):
    (c,) = containers(operator_deployment(docs))
    return c


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def lint(values_text):
    """helm lint --strict of the operator chart with one values file; the CompletedProcess."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(values_text)
        f.flush()
        return subprocess.run([HELM, "lint", "--strict", "--kube-version", K8S_VERSION,
                               str(REPO / "charts" / OPERATOR), "-f", f.name], capture_output=True, text=True)


class OperatorPod(unittest.TestCase):
    def test_the_pod_and_its_container_are_hardened(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                dep = operator_deployment(docs)
                psc = pod_template(dep)["spec"]["securityContext"]
                self.assertTrue(psc["runAsNonRoot"])
                self.assertEqual(psc["runAsUser"], 10001)
                self.assertEqual(psc["seccompProfile"], {"type": "RuntimeDefault"})
                (c,) = containers(dep)
                assert_hardened_container(self, c["securityContext"])
                self.assertTrue({"cpu", "memory"} <= set(c["resources"]["requests"]))
                self.assertTrue({"cpu", "memory"} <= set(c["resources"]["limits"]))
                # A read-only root: the one writable path is a bounded scratch volume.
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                self.assertEqual(mounts, {"/tmp": "tmp"})

    def test_the_security_defaults_are_the_member_charts(self):
        own = yaml.safe_load((REPO / "charts/fiscus-operator/values.yaml").read_text())
        member = yaml.safe_load((REPO / "charts/fiscus-member/values.yaml").read_text())
        for key in ("podSecurityContext", "containerSecurityContext"):
            self.assertEqual(own[key], member[key], key)

    def test_only_the_pod_mounts_the_service_account_token(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                spec = pod_template(operator_deployment(docs))["spec"]
                self.assertIs(spec["automountServiceAccountToken"], True)
                (sa,) = of_kind(docs, "ServiceAccount")
                self.assertEqual(spec["serviceAccountName"], sa["metadata"]["name"])
                self.assertIs(sa["automountServiceAccountToken"], False)
        spec = pod_template(operator_deployment(render(OPERATOR, (), ("serviceAccount.create=false",
                                                                      "serviceAccount.name=preexisting"))))["spec"]
        self.assertEqual(spec["serviceAccountName"], "preexisting")
        self.assertEqual(of_kind(render(OPERATOR, (), ("serviceAccount.create=false",)), "ServiceAccount"), [])

    def test_it_runs_fiscus_operator_run_from_the_fiscus_image(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                c = operator_container(docs)
                self.assertEqual(c["command"], ["fiscus-operator"])
                self.assertEqual(c["args"], ["run"])
        self.assertEqual(operator_container(render(OPERATOR))["image"], "fiscus:0.1.0")
        self.assertEqual(operator_container(render(OPERATOR, ALL_ON))["image"],
                         "registry.example.org/fiscus/fiscus@sha256:" + "0" * 64)

    def test_pod_name_and_namespace_come_from_the_downward_api(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                env = env_of(operator_container(docs))
                self.assertEqual(env["POD_NAME"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.name"}})
                self.assertEqual(env["POD_NAMESPACE"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.namespace"}})
                self.assertNotIn("value", env["POD_NAME"])
                self.assertNotIn("value", env["POD_NAMESPACE"])
                self.assertEqual(env["FISCUS_OPERATOR_HTTP_LISTEN"]["value"], f"0.0.0.0:{OPS_PORT}")

    def test_json_logs_is_an_environment_variable_when_on(self):
        self.assertEqual(env_of(operator_container(render(OPERATOR)))["FISCUS_OPERATOR_JSON_LOGS"]["value"], "true")
        self.assertNotIn("FISCUS_OPERATOR_JSON_LOGS", env_of(operator_container(render(OPERATOR, (), ("jsonLogs=false",)))))
        env = env_of(operator_container(render(OPERATOR, ALL_ON)))
        self.assertEqual(env["RUST_LOG"]["value"], "info,fiscus_operator=debug")

    def test_the_extra_env_cannot_replace_the_charts_own_variables(self):
        out = helm_template(OPERATOR, (), ("extraEnv[0].name=POD_NAME", "extraEnv[0].value=x"))
        self.assertNotEqual(out.returncode, 0)

    def test_probes_are_healthz_and_readyz_on_the_ops_port_it_listens_on(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                c = operator_container(docs)
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                self.assertEqual(ports, {"ops": OPS_PORT})
                self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "ops"})
                self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "ops"})
                listen = env_of(c)["FISCUS_OPERATOR_HTTP_LISTEN"]["value"]
                self.assertEqual(int(listen.rsplit(":", 1)[1]), ports["ops"])

    def test_probe_timings_come_from_values(self):
        c = operator_container(render(OPERATOR, (), ("probes.readiness.periodSeconds=7",
                                                     "probes.liveness.failureThreshold=9")))
        self.assertEqual(c["readinessProbe"]["periodSeconds"], 7)
        self.assertEqual(c["livenessProbe"]["failureThreshold"], 9)
        self.assertEqual(operator_container(render(OPERATOR, ALL_ON))["readinessProbe"]["periodSeconds"], 10)

    def test_two_replicas_that_roll(self):
        dep = operator_deployment(render(OPERATOR))
        self.assertEqual(dep["spec"]["replicas"], 2)
        # Standbys are Ready too (/readyz is 200 once the API server answers), so a rolling update proceeds.
        self.assertEqual(dep["spec"]["strategy"], {"type": "RollingUpdate"})
        self.assertTrue(selects(dep["spec"]["selector"]["matchLabels"], pod_template(dep)["metadata"]["labels"]))

    def test_scheduling_values_reach_the_pod(self):
        spec = pod_template(operator_deployment(render(OPERATOR, ALL_ON)))["spec"]
        self.assertEqual(spec["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertEqual(spec["tolerations"][0]["key"], "dedicated")
        self.assertIn("podAntiAffinity", spec["affinity"])
        self.assertEqual(spec["imagePullSecrets"], [{"name": "registry-credentials"}])


class OperatorRbac(unittest.TestCase):
    def test_no_rbac_rule_anywhere_has_a_wildcard(self):
        seen = 0
        for chart in ALL_CHARTS:
            for _, values in values_matrix((chart,)):
                for role in [d for d in render(chart, (values,)) if d["kind"] in ("Role", "ClusterRole")]:
                    for rule in role["rules"]:
                        seen += 1
                        with self.subTest(values=values, role=role["metadata"]["name"], rule=rule):
                            for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                                self.assertFalse([x for x in rule.get(field, []) if "*" in x], field)
                            self.assertNotIn("nonResourceURLs", rule)
        self.assertGreater(seen, 0)

    def test_the_cluster_role_grants_exactly_the_operators_rules(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                (cr,) = of_kind(docs, "ClusterRole")
                self.assertEqual(triples(cr["rules"]), triples(CLUSTER_RULES))
                self.assertNotIn("aggregationRule", cr)
                self.assertFalse([r for r in cr["rules"] if "resourceNames" in r])

    def test_the_lease_rule_is_only_in_the_namespaced_role(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                (role,) = of_kind(docs, "Role")
                self.assertEqual(role["metadata"]["namespace"], NAMESPACE)
                self.assertEqual(triples(role["rules"]), triples([LEASE_RULE]))
                for cr in of_kind(docs, "ClusterRole"):
                    self.assertFalse({g for g, _, _ in triples(cr["rules"])} & {"coordination.k8s.io"})
                    self.assertFalse({r for _, r, _ in triples(cr["rules"])} & {"leases"})

    def test_the_bindings_give_the_roles_to_the_operators_service_account(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                sa = pod_template(operator_deployment(docs))["spec"]["serviceAccountName"]
                subject = [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
                (crb,) = of_kind(docs, "ClusterRoleBinding")
                (cr,) = of_kind(docs, "ClusterRole")
                self.assertEqual(crb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                  "name": cr["metadata"]["name"]})
                self.assertEqual(crb["subjects"], subject)
                (rb,) = of_kind(docs, "RoleBinding")
                (role,) = of_kind(docs, "Role")
                self.assertEqual(rb["metadata"]["namespace"], NAMESPACE)
                self.assertEqual(rb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                 "name": role["metadata"]["name"]})
                self.assertEqual(rb["subjects"], subject)

    def test_the_lease_it_elects_with_is_in_the_pods_namespace(self):
        # operator/src/main.rs: the Lease "fiscus-operator" in POD_NAMESPACE (the release namespace).
        main = OPERATOR_MAIN.read_text()
        self.assertRegex(main, r'LeaseManagerBuilder::new\(\s*client\.clone\(\),\s*"fiscus-operator"\s*,?\s*\)')
        self.assertRegex(main, r'env\s*=\s*"POD_NAMESPACE"')


class OperatorAvailabilityAndMetrics(unittest.TestCase):
    def test_a_pdb_exists_when_there_is_more_than_one_replica(self):
        for sets, replicas in (((), 2), (("replicaCount=3",), 3)):
            with self.subTest(replicas=replicas):
                docs = render(OPERATOR, (), sets)
                (pdb,) = of_kind(docs, "PodDisruptionBudget")
                self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
                self.assertEqual(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow")
                self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"],
                                        pod_template(operator_deployment(docs))["metadata"]["labels"]))
        self.assertEqual(of_kind(render(OPERATOR, (), ("replicaCount=1",)), "PodDisruptionBudget"), [])
        self.assertEqual(of_kind(render(OPERATOR, (), ("pdb.create=false",)), "PodDisruptionBudget"), [])

    def test_service_monitor_scrapes_every_replicas_ops_port(self):
        docs = render(OPERATOR, ALL_ON)
        (sm,) = of_kind(docs, "ServiceMonitor")
        self.assertEqual(sm["metadata"]["labels"]["release"], "prometheus")
        (svc,) = [s for s in of_kind(docs, "Service") if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        self.assertTrue(svc["spec"]["publishNotReadyAddresses"], "standbys are not Ready but have metrics")
        (ep,) = sm["spec"]["endpoints"]
        self.assertEqual((ep["port"], ep["path"]), ("ops", "/metrics"))
        port = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]][0]
        dep = operator_deployment(docs)
        self.assertTrue(selects(svc["spec"]["selector"], pod_template(dep)["metadata"]["labels"]))
        self.assertIn(port["targetPort"], {p["name"] for p in containers(dep)[0]["ports"]})
        self.assertEqual(sm["spec"]["namespaceSelector"], {"matchNames": [NAMESPACE]})
        for off in (render(OPERATOR), render(OPERATOR, ("charts/fiscus-operator/ci/hebei-values.yaml",))):
            self.assertEqual(of_kind(off, "ServiceMonitor"), [])
            self.assertEqual(of_kind(off, "Service"), [])

    def test_the_network_policy_admits_only_the_ops_port(self):
        for values, docs in renderings():
            with self.subTest(values=values):
                (np,) = of_kind(docs, "NetworkPolicy")
                self.assertEqual(np["spec"]["policyTypes"], ["Ingress"])
                self.assertTrue(selects(np["spec"]["podSelector"]["matchLabels"],
                                        pod_template(operator_deployment(docs))["metadata"]["labels"]))
                self.assertEqual([p for r in np["spec"]["ingress"] for p in r["ports"]], [{"port": "ops"}])
        self.assertEqual(of_kind(render(OPERATOR, (), ("networkPolicy.enabled=false",)), "NetworkPolicy"), [])

    def test_cluster_scoped_objects_have_no_namespace_and_the_rest_the_releases(self):
        for values, docs in renderings():
            for d in docs:
                with self.subTest(values=values, object=f'{d["kind"]}/{d["metadata"]["name"]}'):
                    if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                        self.assertNotIn("namespace", d["metadata"])
                    else:
                        self.assertEqual(d["metadata"]["namespace"], NAMESPACE)


class OperatorSchema(unittest.TestCase):
    def test_a_wrong_type_in_a_values_file_fails_helm_lint(self):
        out = lint('replicaCount: "two"\n')
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("want integer", out.stdout + out.stderr)
        self.assertIn("replicaCount", out.stdout + out.stderr)

    def test_a_misspelt_key_or_a_bad_value_fails(self):
        for sets, word in ((("pdb.creat=true",), "creat"), (("replicaCount=0",), "replicaCount"),
                           (("updateStrategy.type=Rolling",), "updateStrategy"),
                           (("image.pullPolicy=Sometimes",), "pullPolicy")):
            with self.subTest(sets=sets):
                out = helm_template(OPERATOR, (), sets)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(word, out.stderr)

    def test_the_defaults_and_every_ci_file_pass_helm_lint(self):
        self.assertEqual(helm_template(OPERATOR).returncode, 0)
        self.assertEqual(lint("{}\n").returncode, 0)


class OperatorCrds(unittest.TestCase):
    def test_the_charts_crds_are_a_copy_of_k8s_crds(self):
        have = [p for p in (CRD_SOURCE, CRD_CHART_COPY) if p.exists()]
        if not have:
            self.skipTest(f"{CRD_SOURCE.relative_to(REPO)} is not generated yet, so the chart ships no CRDs: "
                          "run `make crds` (fiscus-operator crd, then the copy into charts/fiscus-operator/crds/)")
        self.assertEqual(len(have), 2, f"only {have[0].relative_to(REPO)} exists: run `make crds`")
        self.assertEqual(CRD_CHART_COPY.read_bytes(), CRD_SOURCE.read_bytes(),
                         "charts/fiscus-operator/crds/fiscus.io.yaml differs from k8s/crds/fiscus.io.yaml: run `make crds`")

    def test_the_chart_ships_nothing_else_as_a_crd(self):
        crds = REPO / "charts/fiscus-operator/crds"
        extra = [p.name for p in crds.glob("*") if p.name != "fiscus.io.yaml"] if crds.exists() else []
        self.assertEqual(extra, [])

    def test_make_crds_regenerates_both_files(self):
        make = (REPO / "Makefile").read_text()
        target = make.split("\ncrds:", 1)[1].split("\n\n", 1)[0]
        self.assertIn("-p fiscus-operator -- crd > k8s/crds/fiscus.io.yaml", target)
        self.assertIn("cp k8s/crds/fiscus.io.yaml charts/fiscus-operator/crds/fiscus.io.yaml", target)


def rust_struct_fields(source, struct):
    """{camelCase field: required} of a `#[serde(rename_all = "camelCase")]`
    struct in crd.rs; required: neither an Option nor `#[serde(default …)]`."""
    m = re.search(rf"pub struct {struct} \{{(.*?)\n\}}", source, re.S)
    assert m, f"no struct {struct} in operator/src/crd.rs"
    camel = re.search(rf'rename_all = "camelCase"\)\]\s*pub struct {struct} ', source) is not None
    fields, attrs = {}, ""
    for line in m.group(1).splitlines():
        line = line.strip()
        if line.startswith("#["):
            attrs += line
        elif f := re.match(r"pub (\w+): (.+),$", line):
            name = f.group(1)
            if camel:
                name = re.sub(r"_([a-z])", lambda x: x.group(1).upper(), name)
            fields[name] = not (f.group(2).startswith("Option<") or "serde(default" in attrs)
            attrs = ""
    return fields


class OperatorExamples(unittest.TestCase):
    """The example Consortium and FinanceMembers. Without the CRD schema in
    kubernetes-validate, they are checked against the fields the brief and
    operator/src/crd.rs name."""

    MEMBERS = {  # code: (nameZh, nameEn, level, parentCode)
        "000000": ("财政部", "Ministry of Finance", "central", None),
        "130000": ("河北省财政厅", "Hebei Finance Department", "province", "000000"),
        "130100": ("石家庄市财政局", "Shijiazhuang Finance Bureau", "city", "130000"),
        "130102": ("长安区财政局", "Chang'an District Finance Bureau", "county", "130100"),
        "991300": ("河北省审计厅", "Hebei Audit Office", "supervisor", "130000"),
    }
    MEMBER_FIELDS = {"code", "nameZh", "nameEn", "level", "parentCode", "roles", "consortiumRef",
                     "enrollmentSecretRef", "apiEnrollmentSecretRef", "storage", "resources", "gateway", "api",
                     "telemetryEndpoint", "syncedLagBlocks", "renewBeforeDays", "deletionPolicy"}
    CONSORTIUM_FIELDS = {"consortiumId", "genesis", "signersConfigMap", "identityCa", "orderers", "natsUrl", "image",
                         "serviceMonitorLabels"}

    @classmethod
    def setUpClass(cls):
        cls.consortia = [d for d in yaml.safe_load_all((EXAMPLES / "consortium.yaml").read_text()) if d]
        cls.members = [d for d in yaml.safe_load_all((EXAMPLES / "members.yaml").read_text()) if d]
        cls.crd_rs = OPERATOR_CRD.read_text()

    def check_keys(self, obj, struct, where):
        fields = rust_struct_fields(self.crd_rs, struct)
        self.assertLessEqual(set(obj), set(fields), f"{where}: fields {struct} does not have")
        self.assertLessEqual({k for k, req in fields.items() if req}, set(obj), f"{where}: required fields of {struct}")

    def test_each_is_a_fiscus_io_v1alpha1_resource_in_fiscus_hebei(self):
        self.assertEqual([d["kind"] for d in self.consortia], ["Consortium"])
        self.assertEqual([d["kind"] for d in self.members], ["FinanceMember"] * 5)
        for d in self.consortia + self.members:
            with self.subTest(name=d["metadata"]["name"]):
                self.assertEqual(d["apiVersion"], "fiscus.io/v1alpha1")
                self.assertEqual(d["metadata"]["namespace"], "fiscus-hebei")
                self.assertEqual(set(d), {"apiVersion", "kind", "metadata", "spec"})

    def test_the_five_devnet_members(self):
        got = {m["spec"]["code"]: (m["spec"]["nameZh"], m["spec"]["nameEn"], m["spec"]["level"],
                                   m["spec"].get("parentCode")) for m in self.members}
        self.assertEqual(got, self.MEMBERS)

    def test_member_fields_are_those_of_the_finance_member_api(self):
        (consortium,) = self.consortia
        for m in self.members:
            spec = m["spec"]
            with self.subTest(member=spec["code"]):
                self.assertLessEqual(set(spec), self.MEMBER_FIELDS)
                self.check_keys(spec, "FinanceMemberSpec", spec["code"])
                self.assertRegex(spec["code"], r"^[0-9]{6}$")
                self.assertIsInstance(spec["code"], str)
                self.assertIn(spec["level"], {"central", "province", "city", "county", "supervisor"})
                self.assertTrue(spec["roles"])
                self.assertLessEqual(set(spec["roles"]), {"node", "admin", "operator", "client", "auditor"})
                self.assertIn("node", spec["roles"])
                self.assertEqual(spec["consortiumRef"], {"name": consortium["metadata"]["name"]})
                self.assertEqual(spec["enrollmentSecretRef"], {"name": f'fiscus-{spec["code"]}-enrollment'})
                if "apiEnrollmentSecretRef" in spec:
                    # The client identity's secret is a `client` role's: the member must have that role.
                    self.assertIn("client", spec["roles"])
                    self.assertEqual(spec["apiEnrollmentSecretRef"],
                                     {"name": f'fiscus-{spec["code"]}-client-enrollment'})
                self.assertTrue(0 <= spec.get("syncedLagBlocks", 10) <= 1_000_000)
                self.check_keys(spec["storage"], "StorageSpec", "storage")
                self.assertRegex(spec["storage"]["size"], r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
                self.check_keys(spec["gateway"], "ExposeSpec", "gateway")
                self.check_keys(spec["api"], "ApiExposeSpec", "api")
                for expose in (spec["gateway"], spec["api"]):
                    self.assertIn(expose["serviceType"], {"ClusterIP", "NodePort", "LoadBalancer"})
                self.assertIn(spec.get("deletionPolicy", "Retain"), {"Retain", "Delete"})
                self.assertTrue(1 <= spec.get("renewBeforeDays", 30) <= 365)
                if "resources" in spec:
                    self.assertLessEqual(set(spec["resources"]), {"requests", "limits", "claims"})
                # The CEL rules of the CRD, as the API server would apply them.
                self.assertTrue(spec["level"] == "central" or "parentCode" in spec)
                self.assertNotEqual(spec.get("parentCode"), spec["code"])
                self.assertTrue(spec["level"] != "central" or spec["code"] == "000000")
                self.assertEqual(spec["level"] == "supervisor", spec["code"].startswith("99"))

    def test_every_parent_is_a_member(self):
        codes = {m["spec"]["code"] for m in self.members}
        for m in self.members:
            if "parentCode" in m["spec"]:
                self.assertIn(m["spec"]["parentCode"], codes)

    def test_consortium_fields_are_those_of_the_consortium_api(self):
        (c,) = self.consortia
        spec = c["spec"]
        self.assertLessEqual(set(spec), self.CONSORTIUM_FIELDS)
        self.check_keys(spec, "ConsortiumSpec", "Consortium")
        self.assertRegex(spec["consortiumId"], r"^[a-z0-9][a-z0-9.-]{0,62}$")
        for ref in (spec["genesis"], spec["identityCa"]["rootCert"]):
            self.check_keys(ref, "ObjectKeyRef", "genesis/rootCert")
            self.assertIn(ref["kind"], {"Secret", "ConfigMap"})
        self.check_keys(spec["identityCa"], "IdentityCaRef", "identityCa")
        self.assertTrue(spec["orderers"])
        for o in spec["orderers"]:
            self.check_keys(o, "EndpointSpec", "orderers")
            self.assertRegex(o["endpoint"], r"^[^\s:]+:[0-9]{1,5}$")
        self.check_keys(spec["image"], "ImageSpec", "image")
        self.assertIsInstance(spec["image"]["tag"], str)

    def test_the_consortium_points_at_the_charts_of_the_walkthrough(self):
        (c,) = self.consortia
        spec = c["spec"]
        ca = yaml.safe_load((REPO / "k8s/examples/hebei/ca.yaml").read_text())
        member = yaml.safe_load((REPO / "k8s/examples/hebei/member-130000.yaml").read_text())
        self.assertEqual(spec["consortiumId"], ca["consortiumId"])
        self.assertEqual([(o["endpoint"], o["serverName"]) for o in spec["orderers"]],
                         [(o["addr"], o["server_name"]) for o in member["orderers"]])
        # The name the client checks is one the fiscus-ca chart puts on the CA's certificate.
        sans = named(render("fiscus-ca", ("k8s/examples/hebei/ca.yaml",)), "StatefulSet", "fiscus-ca")
        init_args = pod_template(sans)["spec"]["initContainers"][0]["args"]
        self.assertIn(f'--san={spec["identityCa"]["serverName"]}', init_args)
        self.assertEqual(spec["identityCa"]["endpoint"], f'{spec["identityCa"]["serverName"]}:7100')

    def test_the_operator_values_example_is_the_charts_hebei_ci_file(self):
        link = REPO / "charts/fiscus-operator/ci/hebei-values.yaml"
        self.assertEqual(link.resolve(), (REPO / "k8s/examples/hebei/operator-values.yaml").resolve())
        self.assertEqual(of_kind(render(OPERATOR, ("k8s/examples/hebei/operator-values.yaml",)), "Deployment")[0]
                         ["spec"]["replicas"], 2)


if __name__ == "__main__":
    unittest.main()
