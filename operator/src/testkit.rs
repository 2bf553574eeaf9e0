//! A stand-in for the Kubernetes API server, for the operator's tests and
//! benchmark (the kube-rs `tower-test` pattern: a `kube::Client` over a
//! mock service whose requests this module answers). It keeps objects by
//! path in memory and does what the real server does for the calls the
//! operator makes: GET, POST (create), server-side apply and JSON-patch
//! PATCH, `/status`, DELETE; a Secret's `stringData` becomes `data`; and,
//! like healthy pods would, workloads report all replicas ready. Every
//! request is recorded, and a request can be made to fail.

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub content_type: String,
}

impl Seen {
    /// Whether this request changes anything.
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// A failure to inject: requests with this method whose path ends with
/// `path_suffix` get HTTP `status`, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    pub path_suffix: String,
    pub status: u16,
    pub times: u32,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    faults: Vec<Fault>,
    uid: u64,
}

/// The fake API server's state, shared with the test.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApi").finish_non_exhaustive()
    }
}

/// The API path of a namespaced object.
pub fn path(api_version: &str, plural: &str, ns: &str, name: &str) -> String {
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{base}/namespaces/{ns}/{plural}/{name}")
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl FakeApi {
    /// A client whose every call this fake answers (on a task of the
    /// current tokio runtime).
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = me.answer(req).await;
                send.send_response(resp);
            }
        });
        Client::new(service, "default")
    }

    /// Stores an object as if created (a uid and resourceVersion are added).
    pub fn insert(&self, path: &str, mut obj: Value) {
        let mut s = self.lock();
        s.uid += 1;
        let uid = format!("00000000-0000-0000-0000-{:012}", s.uid);
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(uid);
        }
        obj["metadata"]["resourceVersion"] = json!(s.uid.to_string());
        s.objects.insert(path.to_owned(), obj);
    }

    /// An independent copy of the stored objects (no requests, no faults).
    pub fn fork(&self) -> Self {
        let s = self.lock();
        Self {
            state: Arc::new(Mutex::new(State {
                objects: s.objects.clone(),
                uid: s.uid,
                ..State::default()
            })),
        }
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    pub fn remove(&self, path: &str) -> Option<Value> {
        self.lock().objects.remove(path)
    }

    /// Paths of every stored object.
    pub fn paths(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Every request since the last call.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.lock().seen)
    }

    pub fn fail(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = req.into_body().collect_bytes().await.unwrap_or_default();
        let mut s = self.lock();
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            content_type: content_type.clone(),
        });
        if let Some(f) = s
            .faults
            .iter_mut()
            .find(|f| f.method == method && path.ends_with(&f.path_suffix) && f.times > 0)
        {
            f.times -= 1;
            return status(f.status, "InternalError", "injected failure");
        }
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (target, is_status) = match path.strip_suffix("/status") {
            Some(p) => (p.to_owned(), true),
            None => (path.clone(), false),
        };
        match method {
            Method::GET => match s.objects.get(&target) {
                Some(o) => ok(o),
                None => status(404, "NotFound", &format!("{target} not found")),
            },
            Method::DELETE => match s.objects.remove(&target) {
                Some(o) => ok(&o),
                None => status(404, "NotFound", &format!("{target} not found")),
            },
            Method::POST => {
                // Create: the path is the collection.
                let name = parsed["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_owned();
                let full = format!("{path}/{name}");
                if path.ends_with("/events") {
                    return ok(&parsed);
                }
                if s.objects.contains_key(&full) {
                    return status(409, "AlreadyExists", &format!("{full} exists"));
                }
                let obj = normalize(parsed);
                drop(s);
                self.insert(&full, obj);
                ok(&self.get(&full).unwrap_or(Value::Null))
            }
            Method::PATCH if content_type.starts_with("application/json-patch") => {
                let Some(obj) = s.objects.get_mut(&target) else {
                    return status(404, "NotFound", &format!("{target} not found"));
                };
                match json_patch(obj, &parsed) {
                    Ok(()) => ok(obj),
                    Err(e) => status(422, "Invalid", &e),
                }
            }
            Method::PATCH => {
                // Server-side apply: the applied fields replace what was there;
                // what the server owns (uid, status) stays.
                let existing = s.objects.get(&target).cloned();
                if is_status {
                    let Some(mut obj) = existing else {
                        return status(404, "NotFound", &format!("{target} not found"));
                    };
                    obj["status"] = parsed["status"].clone();
                    s.objects.insert(target.clone(), obj.clone());
                    return ok(&obj);
                }
                let mut obj = normalize(parsed);
                if let Some(old) = &existing {
                    // Another field manager's keys of a map stay (the
                    // granular merge of server-side apply, as far as the
                    // operator relies on it: a ConfigMap's `data`).
                    if obj["kind"] == "ConfigMap"
                        && let (Some(new), Some(old)) =
                            (obj["data"].as_object().cloned(), old["data"].as_object())
                    {
                        let mut merged = old.clone();
                        merged.extend(new);
                        obj["data"] = Value::Object(merged);
                    }
                    obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
                    if !old["status"].is_null() {
                        obj["status"] = old["status"].clone();
                    }
                }
                ready(&mut obj);
                drop(s);
                self.insert(&target, obj);
                ok(&self.get(&target).unwrap_or(Value::Null))
            }
            _ => status(405, "MethodNotAllowed", "not supported by the fake"),
        }
    }
}

/// What the server does to a stored object: `stringData` into `data`.
fn normalize(mut obj: Value) -> Value {
    if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
        let data: serde_json::Map<String, Value> = sd
            .into_iter()
            .map(|(k, v)| {
                let b64 = base64::engine::general_purpose::STANDARD
                    .encode(v.as_str().unwrap_or_default());
                (k, json!(b64))
            })
            .collect();
        obj["data"] = Value::Object(data);
        if let Some(o) = obj.as_object_mut() {
            o.remove("stringData");
        }
    }
    obj
}

/// Workloads report every replica ready, as healthy pods would.
fn ready(obj: &mut Value) {
    if matches!(obj["kind"].as_str(), Some("StatefulSet" | "Deployment")) {
        let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        obj["status"] = json!({"replicas": n, "readyReplicas": n, "availableReplicas": n});
    }
}

/// The JSON-patch operations kube's finalizer helper sends.
fn json_patch(obj: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("a JSON patch is an array")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (op["op"].as_str(), parts.as_slice()) {
            (Some("test"), ["metadata", "finalizers"]) => {
                let have = obj["metadata"]
                    .get("finalizers")
                    .cloned()
                    .unwrap_or(Value::Null);
                if have != op["value"] {
                    return Err(format!("test failed: {have} != {}", op["value"]));
                }
            }
            (Some("test"), ["metadata", "finalizers", i]) => {
                let i: usize = i.parse().map_err(|_| "bad index")?;
                let have = obj["metadata"]["finalizers"]
                    .get(i)
                    .cloned()
                    .unwrap_or(Value::Null);
                if have != op["value"] {
                    return Err(format!("test failed: {have} != {}", op["value"]));
                }
            }
            (Some("add"), ["metadata", "finalizers"]) => {
                obj["metadata"]["finalizers"] = op["value"].clone();
            }
            (Some("add"), ["metadata", "finalizers", "-"]) => {
                let list = obj["metadata"]["finalizers"]
                    .as_array_mut()
                    .ok_or("no finalizers list")?;
                list.push(op["value"].clone());
            }
            (Some("remove"), ["metadata", "finalizers", i]) => {
                let i: usize = i.parse().map_err(|_| "bad index")?;
                let list = obj["metadata"]["finalizers"]
                    .as_array_mut()
                    .ok_or("no finalizers list")?;
                if i >= list.len() {
                    return Err("index out of range".into());
                }
                list.remove(i);
            }
            other => return Err(format!("unsupported JSON patch op {other:?}")),
        }
    }
    Ok(())
}
