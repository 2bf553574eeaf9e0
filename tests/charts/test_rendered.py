"""Unit tests over the charts' rendered YAML: security, probes, disruption
budgets, network policies, config checksums, the values schema, and the shape
of each workload. Every chart is rendered with every values file of the
matrix (ci/*-values.yaml and the Hebei examples) where a rule applies to all."""

import subprocess
import tempfile
import unittest

from charts_lib import (assert_hardened_container, CHARTS, HELM, K8S_VERSION, NAMESPACE, REPO, containers, helm_template,
                        named, of_kind, pod_template, port_of, release_for, render, selects,
                        service_configs, values_matrix, workloads)

MEMBER = "fiscus-member"
MEMBER_COMPONENTS = ("ledger-store", "contract-executor", "gossip-gateway", "exchange-adapter")
HEBEI_130000 = ("k8s/examples/hebei/member-130000.yaml",)
ALL_ON = ("charts/fiscus-member/ci/all-enabled-values.yaml",)


def every_rendering():
    for chart, values in values_matrix():
        yield chart, values, render(chart, (values,))


def member_pod_labels(code, release, component):
    """The labels the member chart gives a pod of another (or this) release."""
    return {"app.kubernetes.io/name": MEMBER, "app.kubernetes.io/instance": release,
            "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "fiscus",
            "fiscus.io/member": code}


def checksum(docs, name):
    for w in workloads(docs):
        if w["metadata"]["name"] == name:
            return pod_template(w)["metadata"]["annotations"]["checksum/config"]
    raise AssertionError(f"no workload {name}")


class SecurityContext(unittest.TestCase):
    def test_every_pod_runs_as_non_root_with_runtime_default_seccomp(self):
        for chart, values, docs in every_rendering():
            for w in workloads(docs):
                with self.subTest(values=values, workload=w["metadata"]["name"]):
                    psc = pod_template(w)["spec"]["securityContext"]
                    self.assertTrue(psc["runAsNonRoot"])
                    self.assertNotEqual(psc.get("runAsUser"), 0)
                    self.assertEqual(psc["seccompProfile"], {"type": "RuntimeDefault"})

    def test_every_container_is_hardened(self):
        for chart, values, docs in every_rendering():
            for w in workloads(docs):
                for c in containers(w):
                    with self.subTest(values=values, container=f'{w["metadata"]["name"]}/{c["name"]}'):
                        assert_hardened_container(self, c["securityContext"])

    def test_no_pod_mounts_a_service_account_token(self):
        for chart, values, docs in every_rendering():
            for w in workloads(docs):
                with self.subTest(values=values, workload=w["metadata"]["name"]):
                    self.assertIs(pod_template(w)["spec"]["automountServiceAccountToken"], False)

    def test_every_container_has_requests_and_limits(self):
        for chart, values, docs in every_rendering():
            for w in workloads(docs):
                for c in containers(w):
                    with self.subTest(values=values, container=c["name"]):
                        self.assertTrue({"cpu", "memory"} <= set(c["resources"]["requests"]))
                        self.assertTrue({"cpu", "memory"} <= set(c["resources"]["limits"]))


class Probes(unittest.TestCase):
    def test_each_service_probes_healthz_and_readyz_on_the_port_its_config_serves_them(self):
        for chart, values, docs in every_rendering():
            configs = service_configs(docs)
            for w in workloads(docs):
                for c in containers(w, init=False):
                    with self.subTest(values=values, container=c["name"]):
                        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                            ("startupProbe", "/healthz")):
                            get = c[probe]["httpGet"]
                            self.assertEqual(get["path"], path)
                            self.assertEqual(ports[get["port"]],
                                             port_of(configs[f'{c["name"]}.toml']["http_listen"]))

    def test_container_ports_are_exactly_the_ports_the_config_listens_on(self):
        for chart, values, docs in every_rendering():
            configs = service_configs(docs)
            for w in workloads(docs):
                for c in containers(w, init=False):
                    with self.subTest(values=values, container=c["name"]):
                        cfg = configs[f'{c["name"]}.toml']
                        listening = {port_of(cfg[k]) for k in
                                     ("listen", "http_listen", "raft_listen", "grpc_listen") if k in cfg}
                        self.assertEqual({p["containerPort"] for p in c["ports"]}, listening)


class Disruption(unittest.TestCase):
    def test_member_has_a_pdb_per_component_that_selects_its_pods(self):
        docs = render(MEMBER)
        pdbs = of_kind(docs, "PodDisruptionBudget")
        self.assertEqual(len(pdbs), len(MEMBER_COMPONENTS))
        for pdb in pdbs:
            with self.subTest(pdb=pdb["metadata"]["name"]):
                matched = [w for w in workloads(docs)
                           if selects(pdb["spec"]["selector"]["matchLabels"], pod_template(w)["metadata"]["labels"])]
                self.assertEqual(len(matched), 1)
                self.assertEqual(pdb["spec"]["maxUnavailable"], 1)

    def test_orderer_pdb_keeps_a_raft_quorum(self):
        for replicas, quorum in ((3, 2), (5, 3)):
            with self.subTest(replicas=replicas):
                docs = render("fiscus-orderer", (), (f"replicaCount={replicas}",))
                (pdb,) = of_kind(docs, "PodDisruptionBudget")
                self.assertEqual(pdb["spec"]["minAvailable"], quorum)
                (sts,) = of_kind(docs, "StatefulSet")
                self.assertEqual(sts["spec"]["replicas"], replicas)
                self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"],
                                        pod_template(sts)["metadata"]["labels"]))

    def test_pdbs_can_be_turned_off(self):
        self.assertEqual(of_kind(render(MEMBER, (), ("pdb.create=false",)), "PodDisruptionBudget"), [])
        self.assertEqual(of_kind(render("fiscus-orderer", (), ("pdb.create=false",)), "PodDisruptionBudget"), [])


class NetworkPolicies(unittest.TestCase):
    def rule(self, docs, policy, port):
        np = named(docs, "NetworkPolicy", policy)
        self.assertEqual(np["spec"]["policyTypes"], ["Ingress"])
        rules = [r for r in np["spec"]["ingress"] if {"port": port} in r["ports"]]
        self.assertEqual(len(rules), 1, f"{policy}: one rule for port {port}")
        return rules[0]

    def admits(self, rule, labels, same_namespace=True):
        """Whether a rule admits a pod with these labels (podSelector peers only)."""
        if "from" not in rule:
            return True
        for peer in rule["from"]:
            if "ipBlock" in peer:
                continue
            if "namespaceSelector" in peer and peer["namespaceSelector"] != {} and not same_namespace:
                continue
            if "namespaceSelector" not in peer and not same_namespace:
                continue
            if selects(peer.get("podSelector", {}).get("matchLabels", {}), labels):
                return True
        return False

    def test_ledger_store_admits_only_its_own_members_pods(self):
        docs = render(MEMBER, HEBEI_130000)
        rule = self.rule(docs, "fiscus-130000-ledger-store", "grpc")
        for own in ("gossip-gateway", "exchange-adapter"):
            self.assertTrue(self.admits(rule, member_pod_labels("130000", "fiscus-130000", own)))
        self.assertFalse(self.admits(rule, member_pod_labels("130100", "fiscus-130100", "gossip-gateway")))
        self.assertFalse(self.admits(rule, {"app": "anything"}))
        self.assertFalse(self.admits(rule, member_pod_labels("130000", "fiscus-130000", "exchange-adapter"),
                                     same_namespace=False))

    def test_contract_executor_admits_only_its_own_ledger_store(self):
        docs = render(MEMBER, HEBEI_130000)
        rule = self.rule(docs, "fiscus-130000-contract-executor", "grpc")
        self.assertTrue(self.admits(rule, member_pod_labels("130000", "fiscus-130000", "ledger-store")))
        self.assertFalse(self.admits(rule, member_pod_labels("130000", "fiscus-130000", "gossip-gateway")))
        self.assertFalse(self.admits(rule, member_pod_labels("130100", "fiscus-130100", "ledger-store")))

    def test_gateway_admits_peers_and_by_default_any_source_on_the_gossip_port_alone(self):
        rule = self.rule(render(MEMBER), "fiscus-130000-gossip-gateway", "gossip")
        self.assertNotIn("from", rule)
        np = named(render(MEMBER), "NetworkPolicy", "fiscus-130000-gossip-gateway")
        self.assertEqual(sorted(p["port"] for r in np["spec"]["ingress"] for p in r["ports"]), ["gossip", "ops"])
        hebei = self.rule(render(MEMBER, HEBEI_130000), "fiscus-130000-gossip-gateway", "gossip")
        peer = member_pod_labels("130100", "fiscus-130100", "gossip-gateway")
        self.assertTrue(self.admits(hebei, peer))
        self.assertFalse(self.admits(hebei, member_pod_labels("130100", "fiscus-130100", "ledger-store")))
        all_on = self.rule(render(MEMBER, ALL_ON), "fiscus-130100-gossip-gateway", "gossip")
        self.assertIn({"ipBlock": {"cidr": "203.0.113.0/24"}}, all_on["from"])

    def test_adapter_admits_its_clients(self):
        rule = self.rule(render(MEMBER), "fiscus-130000-exchange-adapter", "api")
        self.assertTrue(self.admits(rule, {"fiscus.io/api-client": "130000"}))
        self.assertFalse(self.admits(rule, {"fiscus.io/api-client": "130100"}))
        self.assertFalse(self.admits(rule, member_pod_labels("130100", "fiscus-130100", "exchange-adapter")))
        all_on = self.rule(render(MEMBER, ALL_ON), "fiscus-130100-exchange-adapter", "api")
        self.assertIn({"port": "grpc"}, all_on["ports"])
        self.assertIn({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
                      all_on["from"])
        self.assertIn({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "budget-system"}}},
                      all_on["from"])

    def test_orderer_raft_port_admits_only_its_own_nodes(self):
        docs = render("fiscus-orderer")
        (np,) = of_kind(docs, "NetworkPolicy")
        raft = [r for r in np["spec"]["ingress"] if {"port": "raft"} in r["ports"]][0]
        (sts,) = of_kind(docs, "StatefulSet")
        self.assertEqual(raft["from"], [{"podSelector": {"matchLabels": sts["spec"]["selector"]["matchLabels"]}}])

    def test_every_policy_selects_one_workload_and_names_ports_it_has(self):
        for chart, values, docs in every_rendering():
            for np in of_kind(docs, "NetworkPolicy"):
                with self.subTest(values=values, policy=np["metadata"]["name"]):
                    sel = np["spec"]["podSelector"]["matchLabels"]
                    matched = [w for w in workloads(docs) if selects(sel, pod_template(w)["metadata"]["labels"])]
                    self.assertEqual(len(matched), 1)
                    names = {p["name"] for c in containers(matched[0], init=False) for p in c["ports"]}
                    for r in np["spec"]["ingress"]:
                        for p in r["ports"]:
                            self.assertIn(p["port"], names)

    def test_network_policies_can_be_turned_off(self):
        for chart in CHARTS:
            with self.subTest(chart=chart):
                self.assertEqual(of_kind(render(chart, (), ("networkPolicy.enabled=false",)), "NetworkPolicy"), [])


class ConfigChecksum(unittest.TestCase):
    def test_a_config_value_change_rolls_exactly_the_pods_that_read_it(self):
        before = render(MEMBER)
        after = render(MEMBER, (), ("ledgerStore.config.threads=4",))
        self.assertNotEqual(checksum(before, "fiscus-130000-ledger-store"), checksum(after, "fiscus-130000-ledger-store"))
        for other in ("contract-executor", "gossip-gateway", "exchange-adapter"):
            self.assertEqual(checksum(before, f"fiscus-130000-{other}"), checksum(after, f"fiscus-130000-{other}"))

    def test_moving_an_orderer_rolls_every_component_that_dials_the_orderers(self):
        before = render(MEMBER)
        after = render(MEMBER, (), ("orderers[0].addr=orderer-a.example.org:7200", "orderers[0].server_name=orderer-a"))
        for c in ("gossip-gateway", "exchange-adapter"):
            self.assertNotEqual(checksum(before, f"fiscus-130000-{c}"), checksum(after, f"fiscus-130000-{c}"))
        # The gateway is the member's one orderer follower; the ledger-store and executor never dial them.
        for c in ("ledger-store", "contract-executor"):
            self.assertEqual(checksum(before, f"fiscus-130000-{c}"), checksum(after, f"fiscus-130000-{c}"))

    def test_orderer_and_ca_checksums_follow_their_config(self):
        for chart, name, change in (("fiscus-orderer", "fiscus-orderer", "config.batching.max_txs=1000"),
                                    ("fiscus-ca", "fiscus-ca", "config.cert_validity_days=90")):
            with self.subTest(chart=chart):
                self.assertNotEqual(checksum(render(chart), name), checksum(render(chart, (), (change,)), name))

    def test_the_checksum_is_the_sha256_of_the_rendered_config_and_stable(self):
        import hashlib
        docs = render(MEMBER)
        cm = named(docs, "ConfigMap", "fiscus-130000-gossip-gateway")
        text = cm["data"]["gossip-gateway.toml"]
        # The ConfigMap holds the same text the annotation hashes (up to the block's final newline).
        self.assertIn(checksum(docs, "fiscus-130000-gossip-gateway"),
                      {hashlib.sha256(t.encode()).hexdigest() for t in (text, text.rstrip("\n"))})
        again = helm_template(MEMBER)
        self.assertIn(checksum(docs, "fiscus-130000-gossip-gateway"), again.stdout)


class Schema(unittest.TestCase):
    WRONG_TYPES = {
        MEMBER: ("contractExecutor.replicaCount=two", "/contractExecutor/replicaCount"),
        "fiscus-orderer": ("config.raft.tick_ms=fast", "/config/raft/tick_ms"),
        "fiscus-ca": ("config.cert_validity_days=forever", "/config/cert_validity_days"),
    }
    TYPOS = {
        MEMBER: ("ledgerStore.confg.threads=2", "confg"),
        "fiscus-orderer": ("config.batching.max_tx=10", "max_tx"),
        "fiscus-ca": ("init.enable=true", "enable"),
    }

    def test_a_wrong_type_fails_helm_template(self):
        for chart, (value, path) in self.WRONG_TYPES.items():
            with self.subTest(chart=chart):
                out = helm_template(chart, (), (value,))
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(path, out.stderr)

    def test_a_wrong_type_in_a_values_file_fails_helm_lint(self):
        files = {MEMBER: "ledgerStore:\n  config:\n    threads: \"4\"\n",
                 "fiscus-orderer": "replicaCount: \"3\"\n",
                 "fiscus-ca": "config:\n  json_logs: \"yes\"\n"}
        for chart, text in files.items():
            with self.subTest(chart=chart), tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                f.write(text)
                f.flush()
                out = subprocess.run([HELM, "lint", "--strict", "--kube-version", K8S_VERSION,
                                      str(REPO / "charts" / chart), "-f", f.name], capture_output=True, text=True)
                self.assertNotEqual(out.returncode, 0, out.stdout)
                self.assertIn("want integer" if chart != "fiscus-ca" else "want boolean", out.stdout + out.stderr)

    def test_a_misspelt_key_fails(self):
        for chart, (value, word) in self.TYPOS.items():
            with self.subTest(chart=chart):
                out = helm_template(chart, (), (value,))
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(word, out.stderr)

    def test_bad_member_code_and_orderer_count_are_refused(self):
        self.assertNotEqual(helm_template(MEMBER, (), (), ("member.code=13000",)).returncode, 0)
        self.assertNotEqual(helm_template("fiscus-orderer", (), ("replicaCount=4",)).returncode, 0)
        self.assertNotEqual(helm_template(MEMBER, (), ("gossipGateway.service.type=ExternalName",)).returncode, 0)

    def test_the_defaults_pass_the_schema(self):
        for chart in CHARTS:
            with self.subTest(chart=chart):
                self.assertEqual(helm_template(chart).returncode, 0)


class MemberWorkloads(unittest.TestCase):
    def test_ledger_store_is_one_statefulset_with_a_volume_claim_template(self):
        docs = render(MEMBER)
        sts = named(docs, "StatefulSet", "fiscus-130000-ledger-store")
        self.assertEqual(sts["spec"]["replicas"], 1)
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "50Gi")
        mounts = {m["name"]: m["mountPath"] for m in containers(sts)[0]["volumeMounts"]}
        self.assertEqual(mounts[claim["metadata"]["name"]], "/var/lib/fiscus")
        self.assertTrue(service_configs(docs)["ledger-store.toml"]["data_dir"].startswith("/var/lib/fiscus/"))
        self.assertEqual(named(docs, "Service", sts["spec"]["serviceName"])["spec"]["clusterIP"], "None")

    def test_executor_replicas_or_an_hpa_and_in_process_execution_when_off(self):
        docs = render(MEMBER, (), ("contractExecutor.replicaCount=3",))
        self.assertEqual(named(docs, "Deployment", "fiscus-130000-contract-executor")["spec"]["replicas"], 3)
        self.assertEqual(of_kind(docs, "HorizontalPodAutoscaler"), [])
        docs = render(MEMBER, ALL_ON)
        (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
        dep = named(docs, "Deployment", "fiscus-130100-contract-executor")
        self.assertNotIn("replicas", dep["spec"])
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], dep["metadata"]["name"])
        self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (2, 4))
        self.assertEqual(service_configs(docs)["ledger-store.toml"]["executor"]["addr"],
                         "fiscus-130100-contract-executor:7400")
        off = render(MEMBER, (), ("contractExecutor.enabled=false",))
        self.assertNotIn("executor", service_configs(off)["ledger-store.toml"])
        self.assertFalse([w for w in workloads(off) if "contract-executor" in w["metadata"]["name"]])

    def test_gateway_service_type_is_configurable(self):
        for kind in ("ClusterIP", "NodePort", "LoadBalancer"):
            with self.subTest(type=kind):
                sets = (f"gossipGateway.service.type={kind}", "gossipGateway.service.nodePort=30750")
                svc = named(render(MEMBER, (), sets), "Service", "fiscus-130000-gossip-gateway")
                self.assertEqual(svc["spec"]["type"], kind)
                (port,) = svc["spec"]["ports"]
                self.assertEqual(port["targetPort"], "gossip")
                self.assertEqual(port.get("nodePort"), None if kind == "ClusterIP" else 30750)

    def test_the_ledger_and_gateway_stay_reachable_while_their_readyz_fails(self):
        # Without an orderer both report not ready, yet blocks must still flow peer -> gateway -> ledger.
        docs = render(MEMBER)
        for name in ("fiscus-130000-ledger-store", "fiscus-130000-gossip-gateway"):
            self.assertTrue(named(docs, "Service", name)["spec"]["publishNotReadyAddresses"], name)
        self.assertNotIn("publishNotReadyAddresses", named(docs, "Service", "fiscus-130000-exchange-adapter")["spec"])

    def test_adapter_ingress_routes_to_the_adapter_service(self):
        docs = render(MEMBER, ALL_ON)
        (ing,) = of_kind(docs, "Ingress")
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        svc = named(docs, "Service", backend["name"])
        self.assertIn(backend["port"]["name"], [p["name"] for p in svc["spec"]["ports"]])
        self.assertEqual(of_kind(render(MEMBER), "Ingress"), [])

    def test_secrets_and_consortium_material_come_from_the_names_in_values(self):
        docs = render(MEMBER, ALL_ON)
        for w in workloads(docs):
            with self.subTest(workload=w["metadata"]["name"]):
                vols = {v["name"]: v for v in pod_template(w)["spec"]["volumes"]}
                self.assertEqual(vols["tls"]["secret"]["secretName"], "fiscus-130100-node-tls")
                if "genesis" in vols:
                    self.assertEqual(vols["genesis"]["secret"]["secretName"], "fiscus-genesis")
                    self.assertEqual(vols["signers"]["configMap"]["name"], "fiscus-signers")
        adapter = {v["name"]: v for v in pod_template(named(docs, "Deployment", "fiscus-130100-exchange-adapter"))["spec"]["volumes"]}
        self.assertEqual(adapter["custodial"]["secret"]["secretName"], "fiscus-130100-client")
        self.assertEqual(adapter["clients"]["secret"]["secretName"], "fiscus-130100-api-clients")
        cfg = service_configs(docs)
        self.assertEqual(cfg["gossip-gateway.toml"]["nats_url"], "nats://nats.fiscus.svc.cluster.local:4222")
        self.assertEqual(cfg["ledger-store.toml"]["genesis_file"], "/etc/fiscus/genesis/consortium-config.pb")

    def test_service_monitor_scrapes_the_ops_port_of_every_component(self):
        for chart, values in (("fiscus-member", ALL_ON[0]), ("fiscus-orderer", "charts/fiscus-orderer/ci/all-enabled-values.yaml"),
                              ("fiscus-ca", "charts/fiscus-ca/ci/all-enabled-values.yaml")):
            with self.subTest(chart=chart):
                docs = render(chart, (values,))
                (sm,) = of_kind(docs, "ServiceMonitor")
                self.assertEqual(sm["metadata"]["labels"]["release"], "prometheus")
                svcs = [s for s in of_kind(docs, "Service")
                        if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
                self.assertEqual(len(svcs), 1)
                (ep,) = sm["spec"]["endpoints"]
                self.assertEqual(ep["path"], "/metrics")
                port = [p for p in svcs[0]["spec"]["ports"] if p["name"] == ep["port"]][0]
                pods = [w for w in workloads(docs) if selects(svcs[0]["spec"]["selector"], pod_template(w)["metadata"]["labels"])]
                self.assertEqual(len(pods), 1 if chart != MEMBER else 4)
                for w in pods:
                    http = service_configs(docs)[f'{containers(w, False)[0]["name"]}.toml']["http_listen"]
                    ports = {p["name"]: p["containerPort"] for p in containers(w, False)[0]["ports"]}
                    self.assertEqual(ports[port["targetPort"]], port_of(http))
        self.assertEqual(of_kind(render(MEMBER), "ServiceMonitor"), [])

    def test_every_service_selects_pods_that_have_its_target_ports(self):
        for chart, values, docs in every_rendering():
            for svc in of_kind(docs, "Service"):
                with self.subTest(values=values, service=svc["metadata"]["name"]):
                    # The StatefulSet controller adds the pod-name label; the template cannot carry it.
                    sel = {k: v for k, v in svc["spec"]["selector"].items() if k != "statefulset.kubernetes.io/pod-name"}
                    pods = [w for w in workloads(docs) if selects(sel, pod_template(w)["metadata"]["labels"])]
                    self.assertTrue(pods)
                    for w in pods:
                        names = {p["name"] for c in containers(w, False) for p in c["ports"]}
                        for p in svc["spec"]["ports"]:
                            self.assertIn(p["targetPort"], names)


class OrdererAndCa(unittest.TestCase):
    def test_orderer_peers_are_every_node_at_its_stable_headless_address(self):
        for replicas in (3, 5):
            with self.subTest(replicas=replicas):
                docs = render("fiscus-orderer", (), (f"replicaCount={replicas}",))
                (sts,) = of_kind(docs, "StatefulSet")
                self.assertEqual(sts["spec"]["podManagementPolicy"], "Parallel")
                headless = named(docs, "Service", sts["spec"]["serviceName"])
                self.assertEqual(headless["spec"]["clusterIP"], "None")
                self.assertTrue(headless["spec"]["publishNotReadyAddresses"])
                peers = service_configs(docs)["orderer.toml"]["peers"]
                self.assertEqual([p["id"] for p in peers], list(range(1, replicas + 1)))
                for i, p in enumerate(peers):
                    host = f"fiscus-orderer-{i}.{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
                    self.assertEqual((p["raft_addr"], p["client_addr"], p["server_name"]),
                                     (f"{host}:7210", f"{host}:7200", f"orderer-{i + 1}"))
                secrets = sorted(v["secret"]["secretName"] for v in pod_template(sts)["spec"]["volumes"] if "secret" in v)
                self.assertEqual(secrets, [f"fiscus-orderer-tls-{i}" for i in range(1, replicas + 1)])
                (claim,) = sts["spec"]["volumeClaimTemplates"]
                self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "20Gi")

    def test_each_orderer_pod_takes_its_raft_id_and_certificate_from_its_ordinal(self):
        (sts,) = of_kind(render("fiscus-orderer"), "StatefulSet")
        (c,) = containers(sts)
        script = c["args"][0]
        self.assertIn("id=$(( ${HOSTNAME##*-} + 1 ))", script)
        self.assertIn("FISCUS_ORDERER__NODE_ID=$id", script)
        self.assertIn("FISCUS_ORDERER__TLS__KEY_FILE=/etc/fiscus/tls/$id/key.pem", script)
        self.assertIn("exec fiscus orderer --config /etc/fiscus/config/orderer.toml", script)
        # The shell's result for pod 2, done here as the pod would.
        out = subprocess.run(["sh", "-c", "HOSTNAME=fiscus-orderer-2; echo $(( ${HOSTNAME##*-} + 1 ))"],
                             capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), "3")

    def test_external_access_gives_each_orderer_node_its_own_service(self):
        docs = render("fiscus-orderer", ("charts/fiscus-orderer/ci/all-enabled-values.yaml",))
        ext = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-external")]
        self.assertEqual(len(ext), 5)
        for i, s in enumerate(sorted(ext, key=lambda s: s["metadata"]["name"])):
            self.assertEqual(s["spec"]["selector"]["statefulset.kubernetes.io/pod-name"], f"fiscus-orderer-{i}")
            self.assertEqual(s["spec"]["ports"][0]["nodePort"], 30200 + i)

    def test_ca_is_initialised_on_its_volume_only_when_empty(self):
        docs = render("fiscus-ca", ("k8s/examples/hebei/ca.yaml",))
        (sts,) = of_kind(docs, "StatefulSet")
        (init,) = pod_template(sts)["spec"]["initContainers"]
        self.assertIn("[ -f /var/lib/fiscus/identity-ca/genesis.json ]", init["command"][2])
        self.assertEqual(init["args"][0], "init")
        self.assertIn("--consortium-id=fiscus-hebei", init["args"])
        self.assertIn("--san=fiscus-ca.fiscus.svc", init["args"])
        self.assertEqual(service_configs(docs)["identity-ca.toml"]["data_dir"], "/var/lib/fiscus/identity-ca")
        off = render("fiscus-ca", (), ("init.enabled=false",))
        self.assertNotIn("initContainers", pod_template(of_kind(off, "StatefulSet")[0])["spec"])

    def test_ca_publishes_the_genesis_bundle_as_a_configmap_or_a_secret(self):
        sets = ("genesis.create=true", "genesis.consortiumConfig=CgxmaXNjdXM=")
        cm = named(render("fiscus-ca", (), sets), "ConfigMap", "fiscus-genesis")
        self.assertEqual(cm["binaryData"], {"consortium-config.pb": "CgxmaXNjdXM="})
        secret = named(render("fiscus-ca", (), sets + ("genesis.kind=Secret",)), "Secret", "fiscus-genesis")
        self.assertEqual(secret["data"]["consortium-config.pb"], "CgxmaXNjdXM=")
        self.assertFalse([d for d in render("fiscus-ca") if d["metadata"]["name"] == "fiscus-genesis"])
        empty = helm_template("fiscus-ca", (), ("genesis.create=true",))
        self.assertNotEqual(empty.returncode, 0)
        self.assertIn("genesis.consortiumConfig", empty.stderr)


if __name__ == "__main__":
    unittest.main()
