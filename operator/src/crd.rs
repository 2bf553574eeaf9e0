//! The operator's API (`fiscus.io/v1alpha1`): a `Consortium` says where the
//! consortium's shared parts are (genesis, CA, orderers); a `FinanceMember`
//! is one finance department's member. What the API server can check by
//! itself is in the schema: code patterns, enums, and CEL rules
//! (`x-kubernetes-validations`), so a malformed resource is refused at
//! `kubectl apply`, not found by the operator later.
//!
//! `fiscus-operator crd` prints the CRDs; `k8s/crds/` holds them, and a test
//! fails when the committed files drift from these types.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const GROUP: &str = "fiscus.io";

/// Where a consortium's shared parts are. Namespaced: a data center runs a
/// consortium's members in one namespace, so the operator's rights and a
/// member's reference stay within it.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fiscus.io",
    version = "v1alpha1",
    kind = "Consortium",
    namespaced,
    shortname = "fcons",
    doc = "A Fiscus consortium: its genesis, identity-ca and orderers",
    printcolumn(
        name = "Consortium",
        type_ = "string",
        json_path = ".spec.consortiumId"
    ),
    printcolumn(name = "CA", type_ = "string", json_path = ".spec.identityCa.endpoint")
)]
#[serde(rename_all = "camelCase")]
pub struct ConsortiumSpec {
    /// The consortium id every envelope names, e.g. `fiscus-hebei`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{0,62}$"))]
    pub consortium_id: String,
    /// The genesis `ConsortiumConfig` (protobuf), as `fiscus identity-ca init` wrote it.
    pub genesis: ObjectKeyRef,
    /// A ConfigMap of PEM certificates: the orderers' and members' nodes.
    pub signers_config_map: String,
    pub identity_ca: IdentityCaRef,
    /// The orderers' client endpoints (`host:port` and the name on their certificates).
    #[schemars(length(min = 1))]
    pub orderers: Vec<EndpointSpec>,
    /// Member gateways every member's gossip-gateway dials (besides the
    /// genesis' `gossip_endpoints`): the member code, `host:port`, and the
    /// name on its certificate. A member skips its own entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gossip_peers: Vec<PeerSpec>,
    /// The namespace Prometheus scrapes from: the only source the ops ports admit.
    #[serde(default = "default_monitoring")]
    pub monitoring_namespace: String,
    /// The ingress controller's namespace, admitted to the API port when a
    /// member has an Ingress.
    #[serde(default = "default_ingress_ns")]
    pub ingress_controller_namespace: String,
    /// Extra labels on each member's ServiceMonitor (e.g. the one your
    /// Prometheus selects on). A ServiceMonitor is made only when the
    /// Prometheus Operator's CRD exists in the cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_monitor_labels: BTreeMap<String, String>,
    /// NATS for events, e.g. `nats://nats.fiscus:4222`; none: events stay in each gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    /// The Fiscus image every member runs.
    pub image: ImageSpec,
}

fn default_monitoring() -> String {
    "monitoring".into()
}

fn default_ingress_ns() -> String {
    "ingress-nginx".into()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PeerSpec {
    #[schemars(regex(pattern = r"^[0-9]{6}$"))]
    pub member: String,
    pub endpoint: String,
    pub server_name: String,
}

/// A key in a Secret or a ConfigMap.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKeyRef {
    pub kind: ObjectKind,
    pub name: String,
    pub key: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityCaRef {
    /// `host:port` of the CA's gRPC endpoint.
    pub endpoint: String,
    /// The name on the CA's serving certificate.
    pub server_name: String,
    /// The consortium root certificate (PEM).
    pub root_cert: ObjectKeyRef,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    pub endpoint: String,
    pub server_name: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    pub repository: String,
    pub tag: String,
    #[serde(default = "default_pull_policy")]
    pub pull_policy: String,
}

fn default_pull_policy() -> String {
    "IfNotPresent".into()
}

/// One finance department's member of a consortium.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fiscus.io",
    version = "v1alpha1",
    kind = "FinanceMember",
    namespaced,
    status = "FinanceMemberStatus",
    shortname = "fm",
    doc = "One finance department's member of a Fiscus consortium",
    printcolumn(name = "Code", type_ = "string", json_path = ".spec.code"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.nameZh"),
    printcolumn(name = "Level", type_ = "string", json_path = ".spec.level"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Height", type_ = "integer", json_path = ".status.height")
)]
#[x_kube(cel)]
#[x_kube(validation = Rule::new("self.level == 'central' || has(self.parentCode)").message("a member below the central level names its parent (parentCode)"))]
#[x_kube(validation = Rule::new("!has(self.parentCode) || self.parentCode != self.code").message("a member is not its own parent"))]
#[x_kube(validation = Rule::new("self.level != 'central' || self.code == '000000'").message("the central member is the Ministry of Finance, code 000000"))]
#[x_kube(validation = Rule::new("self.level != 'supervisor' || self.code.startsWith('99')").message("a supervisor's code starts with 99"))]
#[x_kube(validation = Rule::new("self.level == 'supervisor' || !self.code.startsWith('99')").message("codes starting with 99 are supervisors'"))]
#[x_kube(validation = Rule::new("self.code == oldSelf.code").message("code is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct FinanceMemberSpec {
    /// The member code: a GB/T 2260 division code (6 digits, e.g. 130100),
    /// 000000 for the Ministry of Finance, or a supervisor's 99xxxx.
    #[schemars(regex(pattern = r"^[0-9]{6}$"))]
    pub code: String,
    /// The department's name in Chinese, e.g. 石家庄市财政局.
    #[schemars(length(min = 1, max = 128))]
    pub name_zh: String,
    /// …and in English, e.g. Shijiazhuang Finance Bureau.
    #[schemars(length(min = 1, max = 128))]
    pub name_en: String,
    pub level: Level,
    /// The parent division's code (every member but the central one has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{6}$"))]
    pub parent_code: Option<String>,
    /// What the member's certificates may do.
    #[schemars(length(min = 1))]
    pub roles: Vec<MemberRole>,
    /// The `Consortium` (same namespace) this member joins.
    pub consortium_ref: LocalRef,
    /// The Secret holding the one-time enrollment secret (key `secret`).
    /// Spent at the first enrollment; never logged.
    pub enrollment_secret_ref: LocalRef,
    /// The Secret holding the one-time enrollment secret of the member's
    /// client identity (role `client`, key `secret`). When set, the operator
    /// enrolls that identity into `fiscus-<code>-client-tls`, mounts it in
    /// the exchange-adapter at `/etc/fiscus/client` (the custodial signer
    /// that `api-clients.toml` entries name), publishes its certificate as
    /// `client-<code>.pem` among the signers, renews it and revokes it on
    /// deletion like the node identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_enrollment_secret_ref: Option<LocalRef>,
    #[serde(default)]
    pub storage: StorageSpec,
    /// Requests and limits of every service container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How other members reach this member's gossip-gateway.
    #[serde(default)]
    pub gateway: ExposeSpec,
    /// How clients reach the exchange-adapter's API.
    #[serde(default)]
    pub api: ApiExposeSpec,
    /// OTLP endpoint for traces, e.g. `http://otel-collector:4317`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_endpoint: Option<String>,
    /// `Synced` is True while the member's ledger is at most this many
    /// blocks behind the orderers' head.
    #[serde(default = "default_synced_lag")]
    #[schemars(range(min = 0, max = 1000000))]
    pub synced_lag_blocks: u64,
    /// Renew the certificates this many days before they expire.
    #[serde(default = "default_renew_days")]
    #[schemars(range(min = 1, max = 365))]
    pub renew_before_days: u32,
    /// What happens to the member's ledger volume when this resource is
    /// deleted: Retain (the default) keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_renew_days() -> u32 {
    30
}

fn default_synced_lag() -> u64 {
    10
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Central,
    Province,
    City,
    County,
    Supervisor,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Node,
    Admin,
    Operator,
    Client,
    Auditor,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LocalRef {
    pub name: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The ledger volume's size, e.g. 200Gi.
    #[serde(default = "default_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"))]
    pub size: String,
}

fn default_size() -> String {
    "50Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            storage_class_name: None,
            size: default_size(),
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExposeSpec {
    #[serde(default)]
    pub service_type: ServiceType,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiExposeSpec {
    #[serde(default)]
    pub service_type: ServiceType,
    /// An Ingress for the REST API at this host; none: no Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// What the operator last saw and did.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FinanceMemberStatus {
    /// `Enrolled`, `Ready`, `Synced`, `CertificateExpiring`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The node certificate's id (SHA-256 of its DER, hex) and expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<String>,
    /// The client certificate's expiry (RFC 3339), when the member has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_not_after: Option<String>,
    /// The member's chain height (its ledger-store's) and how many blocks it
    /// is behind the orderers' head, as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
}
