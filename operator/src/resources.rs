//! What a `FinanceMember` becomes: the same workloads as the member chart
//! (`charts/fiscus-member`), built from the member, its consortium and the
//! node certificate's Secret. Each service's config is the service's own
//! `Config` type serialized to TOML, so every config the operator writes is
//! one `fiscus <service> --check-config` accepts.
//!
//! Names: every object is `fiscus-<code>-<service>`, the names the
//! consortium's genesis allows on a member's node certificate
//! (`allowed_names`), so the services dial each other by them.

use crate::crd::{Consortium, FinanceMember, ObjectKind, ServiceType};
use fiscus_common::tls::{Endpoint, TlsConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The member's four services, in start order.
pub const COMPONENTS: [&str; 4] = [
    "contract-executor",
    "ledger-store",
    "gossip-gateway",
    "exchange-adapter",
];

/// The annotation holding the hash of what the operator last applied to an
/// object: equal hash, no write.
pub const APPLIED_HASH: &str = "fiscus.io/applied-hash";

const TLS_DIR: &str = "/etc/fiscus/tls";
const GENESIS_DIR: &str = "/etc/fiscus/genesis";
const SIGNERS_DIR: &str = "/etc/fiscus/signers";
const CLIENTS_DIR: &str = "/etc/fiscus/clients";
/// The member's client identity: the custodial signer `api-clients.toml` names.
pub const CLIENT_DIR: &str = "/etc/fiscus/client";
const WORK_DIR: &str = "/var/lib/fiscus";

/// Ports, as the member chart has them.
pub fn ports(component: &str) -> &'static [(&'static str, i32)] {
    match component {
        "ledger-store" => &[("grpc", 7300), ("ops", 7320)],
        "contract-executor" => &[("grpc", 7400), ("ops", 7420)],
        "gossip-gateway" => &[("gossip", 7500), ("ops", 7520)],
        _ => &[("api", 8080), ("ops", 9480)],
    }
}

/// The base name of a member's objects.
pub fn base_name(code: &str) -> String {
    format!("fiscus-{code}")
}

pub fn object_name(code: &str, component: &str) -> String {
    format!("fiscus-{code}-{component}")
}

/// The Secret with the member's node certificate (`cert.pem`, `key.pem`, `ca.pem`).
pub fn tls_secret_name(code: &str) -> String {
    format!("fiscus-{code}-node-tls")
}

/// The Secret with the member's client certificate (`cert.pem`, `key.pem`,
/// `ca.pem`), when `apiEnrollmentSecretRef` is set.
pub fn client_tls_secret_name(code: &str) -> String {
    format!("fiscus-{code}-client-tls")
}

/// The Secret with the exchange-adapter's API clients (`api-clients.toml`).
pub fn clients_secret_name(code: &str) -> String {
    format!("fiscus-{code}-api-clients")
}

/// The names the node certificate carries: one per service.
pub fn dns_names(code: &str) -> Vec<String> {
    COMPONENTS.iter().map(|c| object_name(code, c)).collect()
}

/// Everything a member's objects are built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub member: &'a FinanceMember,
    pub consortium: &'a Consortium,
    pub namespace: String,
    /// SHA-256 of the member's certificates: a renewed certificate rolls
    /// the pods.
    pub tls_checksum: String,
    /// The `FinanceMember` as controller owner of every object (garbage
    /// collected with it); none in `fiscus-operator render`.
    pub owner: Option<Value>,
    /// Make a ServiceMonitor (the Prometheus Operator's CRD exists).
    pub service_monitor: bool,
    /// The operator's own namespace: admitted to the ledger-store's gRPC
    /// port, where it reads the member's height for `Synced`.
    pub operator_namespace: Option<String>,
}

fn labels(code: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "fiscus-member".into()),
        ("app.kubernetes.io/instance".into(), base_name(code)),
        ("app.kubernetes.io/component".into(), component.into()),
        (
            "app.kubernetes.io/managed-by".into(),
            "fiscus-operator".into(),
        ),
        ("app.kubernetes.io/part-of".into(), "fiscus".into()),
        ("fiscus.io/member".into(), code.into()),
    ])
}

fn selector(code: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "fiscus-member",
        "app.kubernetes.io/instance": base_name(code),
        "app.kubernetes.io/component": component,
    })
}

/// The node identity's files, as the chart's `fiscus.tlsFiles` names them
/// (with `tls.ecdsa`, its default: the operator always enrolls the ECDSA pair).
fn tls() -> TlsConfig {
    TlsConfig {
        cert_file: PathBuf::from(TLS_DIR).join("cert.pem"),
        key_file: PathBuf::from(TLS_DIR).join("key.pem"),
        ecdsa_cert_file: Some(PathBuf::from(TLS_DIR).join(crate::enroll::ECDSA_CERT)),
        ecdsa_key_file: Some(PathBuf::from(TLS_DIR).join(crate::enroll::ECDSA_KEY)),
        ca_file: PathBuf::from(TLS_DIR).join("ca.pem"),
        ..TlsConfig::default()
    }
}

fn endpoint(code: &str, component: &str, port: i32) -> Endpoint {
    Endpoint {
        addr: format!("{}:{port}", object_name(code, component)),
        server_name: object_name(code, component),
    }
}

impl Inputs<'_> {
    fn code(&self) -> &str {
        &self.member.spec.code
    }

    fn genesis_file(&self) -> PathBuf {
        PathBuf::from(GENESIS_DIR).join(&self.consortium.spec.genesis.key)
    }

    fn orderers(&self) -> Vec<Endpoint> {
        self.consortium
            .spec
            .orderers
            .iter()
            .map(|o| Endpoint {
                addr: o.endpoint.clone(),
                server_name: o.server_name.clone(),
            })
            .collect()
    }

    /// Each service's config file, as TOML.
    pub fn configs(&self) -> Result<BTreeMap<&'static str, String>, toml::ser::Error> {
        let code = self.code();
        let any = |port: u16| std::net::SocketAddr::from(([0, 0, 0, 0], port));
        let mut out = BTreeMap::new();
        out.insert(
            "contract-executor",
            toml::to_string(&fiscus_contract_executor::server::Config {
                listen: any(7400),
                http_listen: any(7420),
                tls: tls(),
                json_logs: true,
                ..Default::default()
            })?,
        );
        out.insert(
            "ledger-store",
            toml::to_string(&fiscus_ledger_store::server::Config {
                listen: any(7300),
                http_listen: any(7320),
                data_dir: PathBuf::from(WORK_DIR).join("ledger"),
                tls: tls(),
                genesis_file: self.genesis_file(),
                signers_dir: SIGNERS_DIR.into(),
                // The gossip-gateway is the member's one orderer follower and
                // feeds the ledger-store, as in the chart.
                orderers: Vec::new(),
                executor: Some(endpoint(code, "contract-executor", 7400)),
                json_logs: true,
                ..Default::default()
            })?,
        );
        out.insert(
            "gossip-gateway",
            toml::to_string(&fiscus_gossip_gateway::Config {
                listen: any(7500),
                http_listen: any(7520),
                tls: tls(),
                signers_dir: SIGNERS_DIR.into(),
                genesis_file: self.genesis_file(),
                ledger: endpoint(code, "ledger-store", 7300),
                orderers: self.orderers(),
                nats_url: self.consortium.spec.nats_url.clone(),
                peers: self
                    .consortium
                    .spec
                    .gossip_peers
                    .iter()
                    .filter(|p| p.member != code)
                    .map(|p| fiscus_gossip_gateway::config::PeerEndpoint {
                        member: p.member.clone(),
                        addr: p.endpoint.clone(),
                        server_name: p.server_name.clone(),
                    })
                    .collect(),
                json_logs: true,
                ..Default::default()
            })?,
        );
        out.insert(
            "exchange-adapter",
            toml::to_string(&fiscus_exchange_adapter::Config {
                listen: any(8080),
                http_listen: any(9480),
                tls: tls(),
                ledger: endpoint(code, "ledger-store", 7300),
                orderers: self.orderers(),
                signers_dir: SIGNERS_DIR.into(),
                genesis_file: self.genesis_file(),
                clients_file: PathBuf::from(CLIENTS_DIR).join("api-clients.toml"),
                data_dir: PathBuf::from(WORK_DIR).join("exchange-adapter"),
                json_logs: true,
                ..Default::default()
            })?,
        );
        Ok(out)
    }

    fn image(&self) -> String {
        let i = &self.consortium.spec.image;
        format!("{}:{}", i.repository, i.tag)
    }

    fn metadata(&self, name: &str, component: &str) -> Value {
        let mut m = json!({
            "name": name,
            "namespace": self.namespace,
            "labels": labels(self.code(), component),
        });
        if let Some(owner) = &self.owner {
            m["ownerReferences"] = json!([owner]);
        }
        m
    }

    fn pod_template(
        &self,
        component: &str,
        config_sum: &str,
        extra_mounts: &[Value],
        extra_volumes: &[Value],
    ) -> Value {
        let code = self.code();
        let probe = |path: &str, period: i32, failures: i32| {
            json!({"httpGet": {"path": path, "port": "ops"}, "periodSeconds": period,
                   "timeoutSeconds": 3, "failureThreshold": failures})
        };
        let mut mounts = vec![
            json!({"name": "config", "mountPath": "/etc/fiscus/config", "readOnly": true}),
            json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}),
            json!({"name": "tmp", "mountPath": "/tmp"}),
        ];
        let mut volumes = vec![
            json!({"name": "config", "configMap": {"name": object_name(code, component)}}),
            json!({"name": "tls", "secret": {"secretName": tls_secret_name(code), "defaultMode": 0o440}}),
            json!({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}),
        ];
        if component != "contract-executor" {
            mounts.push(json!({"name": "genesis", "mountPath": GENESIS_DIR, "readOnly": true}));
            mounts.push(json!({"name": "signers", "mountPath": SIGNERS_DIR, "readOnly": true}));
            let g = &self.consortium.spec.genesis;
            volumes.push(match g.kind {
                ObjectKind::Secret => json!({"name": "genesis", "secret": {"secretName": g.name}}),
                ObjectKind::ConfigMap => json!({"name": "genesis", "configMap": {"name": g.name}}),
            });
            volumes.push(json!({"name": "signers", "configMap": {"name": self.consortium.spec.signers_config_map}}));
        }
        mounts.extend(extra_mounts.iter().cloned());
        volumes.extend(extra_volumes.iter().cloned());
        // Every span this pod exports names its finance department (the
        // resource attribute fiscus.member), as the member chart's do.
        let mut env = vec![
            json!({"name": "OTEL_RESOURCE_ATTRIBUTES", "value": format!("fiscus.member={code}")}),
        ];
        if let Some(otlp) = &self.member.spec.telemetry_endpoint {
            env.push(json!({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp}));
        }
        let resources = self
            .member
            .spec
            .resources
            .as_ref()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .unwrap_or_else(|| json!({"requests": {"cpu": "100m", "memory": "128Mi"}}));
        json!({
            "metadata": {
                "labels": labels(code, component),
                "annotations": {"checksum/config": config_sum, "checksum/tls": self.tls_checksum},
            },
            "spec": {
                "automountServiceAccountToken": false,
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                    "fsGroupChangePolicy": "OnRootMismatch",
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": component,
                    "image": self.image(),
                    "imagePullPolicy": self.consortium.spec.image.pull_policy,
                    "args": [component, "--config", format!("/etc/fiscus/config/{component}.toml")],
                    "workingDir": WORK_DIR,
                    "env": env,
                    "ports": ports(component).iter()
                        .map(|(n, p)| json!({"name": n, "containerPort": p}))
                        .collect::<Vec<_>>(),
                    "securityContext": {
                        "runAsNonRoot": true, "readOnlyRootFilesystem": true,
                        "allowPrivilegeEscalation": false, "privileged": false,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "resources": resources,
                    "livenessProbe": probe("/healthz", 10, 6),
                    "readinessProbe": probe("/readyz", 5, 3),
                    "startupProbe": probe("/healthz", 5, 60),
                    "volumeMounts": mounts,
                }],
                "volumes": volumes,
            }
        })
    }

    /// Every object the member is made of, each with [`APPLIED_HASH`] set.
    pub fn objects(&self) -> Result<Vec<Value>, toml::ser::Error> {
        let code = self.code().to_owned();
        let configs = self.configs()?;
        let mut out = Vec::new();
        let service = |component: &str, name: String, kind: ServiceType, extra: Value| {
            let mut spec = json!({
                "type": format!("{kind:?}"),
                "selector": selector(&code, component),
                "ports": ports(component).iter().filter(|(n, _)| *n != "ops")
                    .map(|(n, p)| json!({"name": n, "port": p, "targetPort": n}))
                    .collect::<Vec<_>>(),
            });
            if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
                s.extend(e.clone());
            }
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": self.metadata(&name, component), "spec": spec})
        };
        for component in COMPONENTS {
            let name = object_name(&code, component);
            let config = &configs[component];
            let config_sum = hex::encode(Sha256::digest(config.as_bytes()));
            out.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.metadata(&name, component),
                "data": {format!("{component}.toml"): config},
            }));
            let work = json!({"name": "work", "mountPath": WORK_DIR});
            let work_volume = json!({"name": "work", "emptyDir": {}});
            match component {
                "ledger-store" => {
                    let data = json!({"name": "data", "mountPath": WORK_DIR});
                    let storage = &self.member.spec.storage;
                    let mut claim = json!({
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": storage.size}},
                    });
                    if let Some(class) = &storage.storage_class_name {
                        claim["storageClassName"] = json!(class);
                    }
                    let mut pod = self.pod_template(component, &config_sum, &[data], &[]);
                    pod["spec"]["terminationGracePeriodSeconds"] = json!(60);
                    out.push(json!({
                        "apiVersion": "apps/v1", "kind": "StatefulSet",
                        "metadata": self.metadata(&name, component),
                        "spec": {
                            "replicas": 1,
                            "serviceName": format!("{name}-headless"),
                            "selector": {"matchLabels": selector(&code, component)},
                            "template": pod,
                            "volumeClaimTemplates": [{
                                "metadata": {"name": "data", "labels": selector(&code, component)},
                                "spec": claim,
                            }],
                        }
                    }));
                    out.push(service(
                        component,
                        format!("{name}-headless"),
                        ServiceType::ClusterIP,
                        json!({"clusterIP": "None"}),
                    ));
                    out.push(service(
                        component,
                        name.clone(),
                        ServiceType::ClusterIP,
                        json!({"publishNotReadyAddresses": true}),
                    ));
                }
                "contract-executor" => {
                    out.push(self.deployment(
                        component,
                        &name,
                        self.pod_template(component, &config_sum, &[work], &[work_volume]),
                        false,
                    ));
                    out.push(service(
                        component,
                        name.clone(),
                        ServiceType::ClusterIP,
                        json!({}),
                    ));
                }
                "gossip-gateway" => {
                    out.push(self.deployment(
                        component,
                        &name,
                        self.pod_template(component, &config_sum, &[work], &[work_volume]),
                        true,
                    ));
                    out.push(service(
                        component,
                        name.clone(),
                        self.member.spec.gateway.service_type,
                        json!({"publishNotReadyAddresses": true}),
                    ));
                }
                _ => {
                    let mut mounts = vec![
                        json!({"name": "clients", "mountPath": CLIENTS_DIR, "readOnly": true}),
                    ];
                    let mut volumes = vec![
                        json!({"name": "clients", "secret": {"secretName": clients_secret_name(&code), "defaultMode": 0o440}}),
                    ];
                    if self.member.spec.api_enrollment_secret_ref.is_some() {
                        mounts.push(
                            json!({"name": "custodial", "mountPath": CLIENT_DIR, "readOnly": true}),
                        );
                        volumes.push(json!({"name": "custodial", "secret": {"secretName": client_tls_secret_name(&code), "defaultMode": 0o440}}));
                    }
                    mounts.push(work);
                    volumes.push(work_volume);
                    out.push(self.deployment(
                        component,
                        &name,
                        self.pod_template(component, &config_sum, &mounts, &volumes),
                        false,
                    ));
                    out.push(service(
                        component,
                        name.clone(),
                        self.member.spec.api.service_type,
                        json!({}),
                    ));
                    if let Some(host) = &self.member.spec.api.ingress_host {
                        let mut spec = json!({"rules": [{"host": host, "http": {"paths": [{
                            "path": "/", "pathType": "Prefix",
                            "backend": {"service": {"name": name, "port": {"name": "api"}}}}]}}]});
                        if let Some(class) = &self.member.spec.api.ingress_class_name {
                            spec["ingressClassName"] = json!(class);
                        }
                        out.push(
                            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                        "metadata": self.metadata(&name, component), "spec": spec}),
                        );
                    }
                }
            }
            out.push(json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": self.metadata(&name, component),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(&code, component)}},
            }));
            out.push(self.network_policy(component, &name));
        }
        if self.service_monitor {
            out.extend(self.service_monitor());
        }
        for o in &mut out {
            let hash = hex::encode(Sha256::digest(serde_json::to_vec(o).unwrap_or_default()));
            o["metadata"]["annotations"] = json!({APPLIED_HASH: hash});
        }
        Ok(out)
    }

    fn deployment(&self, component: &str, name: &str, pod: Value, recreate: bool) -> Value {
        let mut spec = json!({
            "replicas": 1,
            "selector": {"matchLabels": selector(self.code(), component)},
            "template": pod,
        });
        if recreate {
            // One gateway per member: it alone feeds the member's ledger.
            spec["strategy"] = json!({"type": "Recreate"});
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": self.metadata(name, component), "spec": spec})
    }

    /// The chart's `metrics.serviceMonitor`: one headless Service over every
    /// pod of the member (the named target port `ops` resolves to each
    /// component's own ops port) and a ServiceMonitor over it.
    fn service_monitor(&self) -> [Value; 2] {
        let code = self.code();
        let name = base_name(code);
        let mut service_meta = self.metadata(&format!("{name}-metrics"), "metrics");
        service_meta["labels"]["fiscus.io/metrics"] = json!("true");
        let mut monitor_meta = self.metadata(&name, "metrics");
        for (k, v) in &self.consortium.spec.service_monitor_labels {
            monitor_meta["labels"][k] = json!(v);
        }
        [
            json!({
                "apiVersion": "v1", "kind": "Service", "metadata": service_meta,
                "spec": {
                    "clusterIP": "None",
                    "selector": {"app.kubernetes.io/name": "fiscus-member", "app.kubernetes.io/instance": name},
                    "ports": [{"name": "ops", "port": 9100, "targetPort": "ops"}],
                }
            }),
            json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": monitor_meta,
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/instance": name, "fiscus.io/metrics": "true"}},
                    "namespaceSelector": {"matchNames": [self.namespace]},
                    "endpoints": [{
                        "port": "ops", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s",
                        "relabelings": [
                            {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"], "targetLabel": "component"},
                            {"sourceLabels": ["__meta_kubernetes_pod_label_fiscus_io_member"], "targetLabel": "member"},
                        ],
                    }],
                }
            }),
        ]
    }

    /// Ingress rules as the chart's: the ledger-store and executor admit
    /// only their own member's pods, the gateway any peer (mutual TLS keeps
    /// strangers out), the adapter its API clients; every ops port admits scrapes.
    fn network_policy(&self, component: &str, name: &str) -> Value {
        let code = self.code();
        let namespace = |ns: &str| json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}});
        let ops = json!({"ports": [{"port": "ops"}],
                         "from": [namespace(&self.consortium.spec.monitoring_namespace)]});
        let rule = match component {
            "ledger-store" => {
                let mut from = vec![json!({"podSelector": {"matchLabels": {
                "app.kubernetes.io/instance": base_name(code), "fiscus.io/member": code}}})];
                if let Some(ns) = &self.operator_namespace {
                    // The operator reads the member's height (`Synced`).
                    let mut operator = namespace(ns);
                    operator["podSelector"] =
                        json!({"matchLabels": {"app.kubernetes.io/name": "fiscus-operator"}});
                    from.push(operator);
                }
                json!({"ports": [{"port": "grpc"}], "from": from})
            }
            "contract-executor" => {
                let mut m = selector(code, "ledger-store");
                m["fiscus.io/member"] = json!(code);
                json!({"ports": [{"port": "grpc"}], "from": [{"podSelector": {"matchLabels": m}}]})
            }
            "gossip-gateway" => json!({"ports": [{"port": "gossip"}]}),
            _ => {
                let mut from =
                    vec![json!({"podSelector": {"matchLabels": {"fiscus.io/api-client": code}}})];
                if self.member.spec.api.ingress_host.is_some() {
                    from.push(namespace(
                        &self.consortium.spec.ingress_controller_namespace,
                    ));
                }
                json!({"ports": [{"port": "api"}], "from": from})
            }
        };
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": self.metadata(name, component),
            "spec": {
                "podSelector": {"matchLabels": selector(code, component)},
                "policyTypes": ["Ingress"],
                "ingress": [rule, ops],
            }
        })
    }
}
