//! The differential script: one fixed sequence of requests, good and bad, run against a server;
//! each step says what the contract expects, and the transcript feeds the cross-server diff.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use base64::Engine as _;
use serde_json::{Value, json};
use taskbench_data::ServiceConfig;
use taskbench_data::auth::JwtKeys;
use taskbench_data::model::Uuid;

use crate::TestApp;
use crate::diff::{Body, Exchange, HEADERS_THAT_MATTER};

/// How a step authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    None,
    /// The token saved in the named variable by an earlier login.
    Token(&'static str),
    /// A literal `authorization` header value.
    Raw(&'static str),
    /// A well-formed token for the user in the named variable, expired a day ago.
    Expired(&'static str),
    /// A token for that user signed with another key.
    WrongKey(&'static str),
    /// A token for that user with `alg: none` and no signature.
    AlgNone(&'static str),
}

#[derive(Debug, Clone)]
pub enum ReqBody {
    None,
    Json(Value),
    /// Raw bytes with an optional content-type.
    Raw(Option<&'static str>, Vec<u8>),
}

/// One request of the script and what the contract says about it.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub method: &'static str,
    /// Path with `{var}` placeholders filled from earlier captures.
    pub path: &'static str,
    /// The route template, for the OpenAPI check (`None` for unknown routes).
    pub route: Option<&'static str>,
    pub auth: Auth,
    pub body: ReqBody,
    pub headers: Vec<(&'static str, &'static str)>,
    pub expect: u16,
    /// Save a JSON pointer of the response body into a variable.
    pub capture: Option<(&'static str, &'static str)>,
    /// Bodies that legitimately differ between runs (metrics) are compared by status and headers only.
    pub compare_body: bool,
}

fn step(name: &'static str, method: &'static str, path: &'static str, expect: u16) -> Step {
    let route = crate_route(path);
    Step {
        name,
        method,
        path,
        route,
        auth: Auth::None,
        body: ReqBody::None,
        headers: Vec::new(),
        expect,
        capture: None,
        compare_body: true,
    }
}

/// The route template a scripted path belongs to.
fn crate_route(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    taskbench_data::http::ROUTES.iter().map(|r| r.path).find(|r| {
        let (rs, ps): (Vec<_>, Vec<_>) = (r.split('/').collect(), path.split('/').collect());
        rs.len() == ps.len() && rs.iter().zip(&ps).all(|(r, p)| r.starts_with('{') || r == p)
    })
}

impl Step {
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.body = ReqBody::Json(body);
        self
    }
    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Self {
        self.body = ReqBody::Raw(content_type, body.into());
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn capture(mut self, var: &'static str, pointer: &'static str) -> Self {
        self.capture = Some((var, pointer));
        self
    }
    fn status_only(mut self) -> Self {
        self.compare_body = false;
        self
    }
}

const A: Auth = Auth::Token("token_a");
const B: Auth = Auth::Token("token_b");

/// The script: every endpoint, every error row of the contract.
pub fn script() -> Vec<Step> {
    let ann = json!({"email": "Ann@Example.com", "password": "correct horse", "name": "  Ann  "});
    let bob = json!({"email": "bob@example.com", "password": "battery staple", "name": "Bob"});
    vec![
        // Unauthenticated endpoints and routing.
        step("health", "GET", "/health", 200),
        step("health HEAD", "HEAD", "/health", 200),
        step("plaintext", "GET", "/bench/plaintext", 200),
        step("json floor", "GET", "/bench/json", 200),
        step("openapi", "GET", "/openapi.json", 200),
        step("openapi gzipped", "GET", "/openapi.json", 200).header("accept-encoding", "gzip"),
        step("small body not gzipped", "GET", "/bench/json", 200).header("accept-encoding", "gzip"),
        step("unknown route", "GET", "/api/v1/nothing-here", 404),
        step("wrong method", "DELETE", "/health", 405),
        step("wrong method on tasks", "PUT", "/api/v1/tasks", 405),
        step("wrong method on me", "POST", "/api/v1/auth/me", 405),
        step("cors preflight", "OPTIONS", "/api/v1/tasks", 204)
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST"),
        step("cors simple", "GET", "/bench/json", 200).header("origin", "https://app.example"),
        step("request id echoed", "GET", "/health", 200).header("x-request-id", "trace-abc-123"),
        // Registration.
        step("register ann", "POST", "/api/v1/auth/register", 201).json(ann.clone()).capture("ann_id", "/id"),
        step("register ann again, other case", "POST", "/api/v1/auth/register", 409)
            .json(json!({"email": "ANN@example.COM", "password": "whatever123", "name": "Ann 2"})),
        step("register bob", "POST", "/api/v1/auth/register", 201).json(bob.clone()).capture("bob_id", "/id"),
        step("register breaking every rule", "POST", "/api/v1/auth/register", 422)
            .json(json!({"email": "not-an-email", "password": "short", "name": "   "})),
        step("register malformed JSON", "POST", "/api/v1/auth/register", 400)
            .raw(Some("application/json"), r#"{"email": "x@example.com","#),
        step("register missing field", "POST", "/api/v1/auth/register", 400)
            .json(json!({"email": "c@example.com", "password": "long enough"})),
        step("register wrong type", "POST", "/api/v1/auth/register", 400)
            .json(json!({"email": "c@example.com", "password": "long enough", "name": 5})),
        step("register without content-type", "POST", "/api/v1/auth/register", 415)
            .raw(None, serde_json::to_vec(&bob).unwrap_or_default()),
        step("register as text/plain", "POST", "/api/v1/auth/register", 415)
            .raw(Some("text/plain"), serde_json::to_vec(&bob).unwrap_or_default()),
        step("register oversize body", "POST", "/api/v1/auth/register", 413)
            .raw(Some("application/json"), oversize_body()),
        // Login.
        step("login ann", "POST", "/api/v1/auth/login", 200)
            .json(json!({"email": "ann@example.com", "password": "correct horse"}))
            .capture("token_a", "/token"),
        step("login wrong password", "POST", "/api/v1/auth/login", 401)
            .json(json!({"email": "ann@example.com", "password": "wrong horse"})),
        step("login unknown email", "POST", "/api/v1/auth/login", 401)
            .json(json!({"email": "nobody@example.com", "password": "correct horse"})),
        step("login bob", "POST", "/api/v1/auth/login", 200)
            .json(json!({"email": "BOB@example.com", "password": "battery staple"}))
            .capture("token_b", "/token"),
        // Tokens.
        step("me", "GET", "/api/v1/auth/me", 200).auth(A),
        step("me without token", "GET", "/api/v1/auth/me", 401),
        step("me with garbage token", "GET", "/api/v1/auth/me", 401).auth(Auth::Raw("Bearer garbage")),
        step("me with basic auth", "GET", "/api/v1/auth/me", 401).auth(Auth::Raw("Basic YW5uOnB3")),
        step("me with empty bearer", "GET", "/api/v1/auth/me", 401).auth(Auth::Raw("Bearer ")),
        step("me with wrong key", "GET", "/api/v1/auth/me", 401).auth(Auth::WrongKey("ann_id")),
        step("me with alg none", "GET", "/api/v1/auth/me", 401).auth(Auth::AlgNone("ann_id")),
        step("me with expired token", "GET", "/api/v1/auth/me", 401).auth(Auth::Expired("ann_id")),
        // Creating tasks.
        step("create minimal", "POST", "/api/v1/tasks", 201)
            .auth(A)
            .json(json!({"title": "  Buy milk  "}))
            .capture("t1", "/id"),
        step("create full", "POST", "/api/v1/tasks", 201)
            .auth(A)
            .json(json!({"title": "Write report", "description": "Quarterly numbers", "priority": "high",
                         "due_at": "2026-12-01T09:30:00.5+02:00"}))
            .capture("t2", "/id"),
        step("create low", "POST", "/api/v1/tasks", 201)
            .auth(A)
            .json(json!({"title": "Water plants", "priority": "low"}))
            .capture("t3", "/id"),
        step("create missing title", "POST", "/api/v1/tasks", 400).auth(A).json(json!({"description": "no title"})),
        step("create blank title", "POST", "/api/v1/tasks", 422).auth(A).json(json!({"title": "   "})),
        step("create title too long", "POST", "/api/v1/tasks", 422).auth(A).json(json!({"title": "x".repeat(201)})),
        step("create description too long", "POST", "/api/v1/tasks", 422)
            .auth(A)
            .json(json!({"title": "ok", "description": "d".repeat(2001)})),
        step("create unknown priority", "POST", "/api/v1/tasks", 400)
            .auth(A)
            .json(json!({"title": "ok", "priority": "urgent"})),
        step("create unreadable due_at", "POST", "/api/v1/tasks", 400)
            .auth(A)
            .json(json!({"title": "ok", "due_at": "tomorrow"})),
        step("create number title", "POST", "/api/v1/tasks", 400).auth(A).json(json!({"title": 42})),
        step("create unknown field", "POST", "/api/v1/tasks", 400)
            .auth(A)
            .json(json!({"title": "ok", "colour": "red"})),
        step("create without token", "POST", "/api/v1/tasks", 401).json(json!({"title": "ok"})),
        step("create without content-type", "POST", "/api/v1/tasks", 415).auth(A).raw(None, r#"{"title":"ok"}"#),
        step("create malformed JSON", "POST", "/api/v1/tasks", 400)
            .auth(A)
            .raw(Some("application/json"), "{title: ok}"),
        step("create for bob", "POST", "/api/v1/tasks", 201)
            .auth(B)
            .json(json!({"title": "Bob's task"}))
            .capture("tb", "/id"),
        // Listing.
        step("list", "GET", "/api/v1/tasks", 200).auth(A),
        step("list page 1", "GET", "/api/v1/tasks?limit=2", 200).auth(A),
        step("list page 2", "GET", "/api/v1/tasks?limit=2&offset=2", 200).auth(A),
        step("list by priority", "GET", "/api/v1/tasks?priority=high", 200).auth(A),
        step("list by status", "GET", "/api/v1/tasks?status=todo&priority=", 200).auth(A),
        step("list none done", "GET", "/api/v1/tasks?status=done", 200).auth(A),
        step("list limit 0", "GET", "/api/v1/tasks?limit=0", 422).auth(A),
        step("list limit 101", "GET", "/api/v1/tasks?limit=101", 422).auth(A),
        step("list negative offset", "GET", "/api/v1/tasks?offset=-1", 422).auth(A),
        step("list limit abc", "GET", "/api/v1/tasks?limit=abc", 400).auth(A),
        step("list unknown status", "GET", "/api/v1/tasks?status=urgent", 400).auth(A),
        step("list as bob", "GET", "/api/v1/tasks", 200).auth(B),
        step("list without token", "GET", "/api/v1/tasks", 401),
        // One task.
        step("get", "GET", "/api/v1/tasks/{t1}", 200).auth(A),
        step("get bob's task as ann", "GET", "/api/v1/tasks/{tb}", 404).auth(A),
        step("get malformed id", "GET", "/api/v1/tasks/not-a-uuid", 400).auth(A),
        step("get unknown id", "GET", "/api/v1/tasks/00000000-0000-4000-8000-000000000000", 404).auth(A),
        step("patch title and status", "PATCH", "/api/v1/tasks/{t1}", 200)
            .auth(A)
            .json(json!({"title": "Buy oat milk", "status": "in_progress"})),
        step("patch empty", "PATCH", "/api/v1/tasks/{t1}", 422).auth(A).json(json!({})),
        step("patch clears with null", "PATCH", "/api/v1/tasks/{t2}", 200)
            .auth(A)
            .json(json!({"description": null, "due_at": null})),
        step("patch null title", "PATCH", "/api/v1/tasks/{t1}", 400).auth(A).json(json!({"title": null})),
        step("patch unknown status", "PATCH", "/api/v1/tasks/{t1}", 400).auth(A).json(json!({"status": "archived"})),
        step("patch blank title", "PATCH", "/api/v1/tasks/{t1}", 422).auth(A).json(json!({"title": ""})),
        step("patch as bob", "PATCH", "/api/v1/tasks/{t1}", 404).auth(B).json(json!({"title": "mine now"})),
        step("patch without content-type", "PATCH", "/api/v1/tasks/{t1}", 415).auth(A).raw(None, r#"{"title":"x"}"#),
        step("patch malformed id", "PATCH", "/api/v1/tasks/123", 400).auth(A).json(json!({"title": "x"})),
        step("delete as bob", "DELETE", "/api/v1/tasks/{t3}", 404).auth(B),
        step("delete", "DELETE", "/api/v1/tasks/{t3}", 204).auth(A),
        step("delete again", "DELETE", "/api/v1/tasks/{t3}", 404).auth(A),
        step("get deleted", "GET", "/api/v1/tasks/{t3}", 404).auth(A),
        step("wrong method on a task", "PUT", "/api/v1/tasks/{t1}", 405).auth(A),
        step("list after changes", "GET", "/api/v1/tasks", 200).auth(A),
        step("metrics", "GET", "/metrics", 200).status_only(),
    ]
}

fn oversize_body() -> Vec<u8> {
    let filler = "x".repeat(taskbench_data::http::MAX_BODY_BYTES);
    serde_json::to_vec(&json!({"email": "big@example.com", "password": "long enough", "name": filler}))
        .unwrap_or_default()
}

/// A transcript of the script against `app`, with the steps' expectations checked: `Err` lists
/// every step whose status was not the contract's.
pub async fn run(app: &TestApp, steps: &[Step]) -> (Vec<Exchange>, Vec<String>) {
    let mut vars: HashMap<&'static str, String> = HashMap::new();
    let mut transcript = Vec::with_capacity(steps.len());
    let mut failures = Vec::new();
    let keys = JwtKeys::new(&ServiceConfig::for_tests().jwt_secret);
    for s in steps {
        let path = fill(s.path, &vars);
        let method = reqwest::Method::from_bytes(s.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = app.request(method, &path);
        for (name, value) in &s.headers {
            req = req.header(*name, *value);
        }
        if let Some(value) = auth_header(s.auth, &vars, &keys) {
            req = req.header("authorization", value);
        }
        req = match &s.body {
            ReqBody::None => req,
            ReqBody::Json(v) => req.json(v),
            ReqBody::Raw(ct, bytes) => {
                let req = req.body(bytes.clone());
                if let Some(ct) = ct { req.header("content-type", *ct) } else { req }
            }
        };
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                failures.push(format!("{} `{}`: request failed: {e}", app.framework.name(), s.name));
                // Recorded all the same (status 0), so that step i stays transcript entry i.
                transcript.push(Exchange {
                    step: s.name.to_owned(),
                    request: format!("{} {path}", s.method),
                    status: 0,
                    headers: BTreeMap::new(),
                    body: Body::Text(format!("request failed: {e}")),
                });
                continue;
            }
        };
        let status = res.status().as_u16();
        let headers: BTreeMap<String, String> = HEADERS_THAT_MATTER
            .iter()
            .filter_map(|h| {
                let values: Vec<&str> = res.headers().get_all(*h).iter().filter_map(|v| v.to_str().ok()).collect();
                (!values.is_empty()).then(|| (h.to_string(), values.join(", ")))
            })
            .collect();
        let raw = res.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let body = decode_body(&headers, raw);
        if status != s.expect {
            failures.push(format!(
                "{} `{}` ({} {path}): expected {}, got {status}: {body:?}",
                app.framework.name(),
                s.name,
                s.method,
                s.expect
            ));
        }
        if let (Some((var, pointer)), Body::Json(v)) = (s.capture, &body)
            && let Some(value) = v.pointer(pointer).and_then(Value::as_str)
        {
            vars.insert(var, value.to_owned());
        }
        transcript.push(Exchange {
            step: s.name.to_owned(),
            request: format!("{} {path}", s.method),
            status,
            headers,
            // The real body, for the OpenAPI check; `compare_body` is applied when transcripts are
            // compared (`not_compared`).
            body,
        });
    }
    (transcript, failures)
}

/// The exchange as the two servers' transcripts compare it: a step whose body legitimately differs
/// between runs (metrics) is compared by status and headers only.
pub fn not_compared(step: &Step, mut exchange: Exchange) -> Exchange {
    if !step.compare_body {
        exchange.body = Body::Text("<not compared>".into());
    }
    exchange
}

fn fill(path: &str, vars: &HashMap<&'static str, String>) -> String {
    vars.iter().fold(path.to_owned(), |p, (k, v)| p.replace(&format!("{{{k}}}"), v))
}

fn auth_header(auth: Auth, vars: &HashMap<&'static str, String>, keys: &JwtKeys) -> Option<String> {
    let user = |var: &str| vars.get(var).and_then(|id| Uuid::parse_str(id).ok()).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match auth {
        Auth::None => None,
        Auth::Token(var) => Some(format!("Bearer {}", vars.get(var).map_or("", String::as_str))),
        Auth::Raw(value) => Some(value.to_owned()),
        Auth::Expired(var) => keys.issue_at(user(var), now - 2 * 86_400).ok().map(|t| format!("Bearer {t}")),
        Auth::WrongKey(var) => {
            JwtKeys::new(b"not-the-server-secret-0123456789abcdef").issue(user(var)).ok().map(|t| format!("Bearer {t}"))
        }
        Auth::AlgNone(var) => {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let claims = b64.encode(json!({"sub": user(var), "iat": now, "exp": now + 3600}).to_string());
            Some(format!("Bearer {header}.{claims}."))
        }
    }
}

fn decode_body(headers: &BTreeMap<String, String>, raw: Vec<u8>) -> Body {
    let raw = if headers.get("content-encoding").is_some_and(|e| e == "gzip") {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out) {
            Ok(_) => out,
            Err(e) => return Body::Text(format!("<invalid gzip: {e}>")),
        }
    } else {
        raw
    };
    if raw.is_empty() {
        return Body::Empty;
    }
    let is_json = headers.get("content-type").is_some_and(|ct| ct.starts_with("application/json"));
    match is_json.then(|| serde_json::from_slice(&raw)) {
        Some(Ok(v)) => Body::Json(v),
        _ => Body::Text(String::from_utf8_lossy(&raw).into_owned()),
    }
}
