//! The HTTP side of load generation: loopback-only targets, a pooled hyper client, sending one
//! API request with a timeout and classifying what went wrong, seeding through the API and
//! signing users in.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::LoadError;
use crate::ops::{self, ApiRequest, UserState, seed_email};
use crate::scenario::DataSpec;
use taskbench_results::ErrorKind;

/// Where load may go. Loopback unless the user says otherwise (`--remote`): a load test is traffic
/// a host's owner must have asked for, and a typo in a URL should not aim it at someone else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reach {
    #[default]
    Loopback,
    /// Any `http://` host: the servers measured live on other machines.
    Anywhere,
}

/// A server to drive: `http://` on a loopback address, or anywhere when allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8080`, no trailing slash.
    pub base: String,
    authority: String,
}

impl Target {
    /// Accepts `http://127.x.y.z:PORT`, `http://[::1]:PORT` or `http://localhost:PORT`: load is
    /// only ever sent to this machine.
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        Self::parse_with(url, Reach::Loopback)
    }

    /// [`Target::parse`], with `reach` saying whether hosts other than this machine are allowed.
    pub fn parse_with(url: &str, reach: Reach) -> Result<Self, LoadError> {
        let bad = |why: &str| LoadError::BadTarget { target: url.to_owned(), why: why.to_owned() };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL; expected http://127.0.0.1:PORT"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// targets are supported"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let loopback =
            host == "localhost" || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback && reach == Reach::Loopback {
            return Err(bad(
                "load is only sent to loopback addresses (127.0.0.0/8, ::1, localhost) unless --remote says the target \
                 is yours to load",
            ));
        }
        let authority = uri.authority().map(|a| a.as_str().to_owned()).ok_or_else(|| bad("no host"))?;
        Ok(Self { base: format!("http://{authority}"), authority })
    }
}

/// A pooled HTTP/1.1 client (hyper directly: the generator must out-run the servers it measures).
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client(max_idle_per_host: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle_per_host)
        // Both servers close a keep-alive connection idle for their header timeout (5 s by
        // default; at least 1 s): drop idle connections well before, so that a request is never
        // sent into one the server is closing (it would count as a connection failure).
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// How long an idle pooled connection is kept: under the servers' least idle bound (1 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(800);

/// What came back: the status and body, or why there is none.
#[derive(Debug)]
pub enum Reply {
    Answer { status: u16, body: Bytes },
    Failed(ErrorKind),
}

impl Reply {
    /// The error this reply counts as, given the status the request expected.
    pub fn error(&self, expect: u16) -> Option<ErrorKind> {
        match self {
            Reply::Answer { status, .. } if *status == expect => None,
            Reply::Answer { status, .. } if (400..500).contains(status) => Some(ErrorKind::Status4xx),
            Reply::Answer { status, .. } if *status >= 500 => Some(ErrorKind::Status5xx),
            Reply::Answer { .. } => Some(ErrorKind::UnexpectedStatus),
            Reply::Failed(kind) => Some(*kind),
        }
    }
}

/// The most of one response body the generator reads. The API's largest answers (a page of 100
/// tasks, the OpenAPI document, /metrics) are tens of KiB; a server that sends more is broken,
/// and reading on would let it grow the generator's memory without bound.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// What a failed request (no response head) counts as: a head that does not parse is the
/// server's protocol error; anything else (refused, reset, closed early) is a connection failure.
fn request_error(error: &hyper_util::client::legacy::Error) -> ErrorKind {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse) {
            return ErrorKind::Protocol;
        }
        source = cause.source();
    }
    ErrorKind::Connect
}

/// Sends `req` and reads the whole response (up to `MAX_RESPONSE_BYTES`), bounded by `timeout`.
pub async fn send(client: &HttpClient, target: &Target, req: &ApiRequest, timeout: Duration) -> Reply {
    let mut builder = Request::builder()
        .method(req.method)
        .uri(format!("{}{}", target.base, req.path))
        .header(HOST, target.authority.as_str());
    if let Some(token) = &req.bearer {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match &req.body {
        Some(bytes) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(bytes.clone()))
        }
        None => Full::new(Bytes::new()),
    };
    let Ok(request) = builder.body(body) else { return Reply::Failed(ErrorKind::Connect) };
    let exchange = async {
        let response = client.request(request).await.map_err(|e| request_error(&e))?;
        let status = response.status().as_u16();
        let declared = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
            return Err(ErrorKind::TooLarge);
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect().await.map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() { ErrorKind::TooLarge } else { ErrorKind::Body }
        })?;
        Ok::<_, ErrorKind>(Reply::Answer { status, body: body.to_bytes() })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(kind)) => Reply::Failed(kind),
        Err(_) => Reply::Failed(ErrorKind::Timeout),
    }
}

/// Timeout of each setup request (seeding, signing in): generous, since nothing is measured.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks that the target answers `GET /health` before any load is sent.
pub async fn preflight(client: &HttpClient, target: &Target) -> Result<(), LoadError> {
    match send(client, target, &ops::health(), Duration::from_secs(3)).await {
        Reply::Answer { status: 200, .. } => Ok(()),
        Reply::Answer { status, .. } => Err(LoadError::Unreachable {
            target: target.base.clone(),
            why: format!("GET /health answered {status}, expected 200 (is the database up?)"),
        }),
        Reply::Failed(kind) => Err(LoadError::Unreachable {
            target: target.base.clone(),
            why: match kind {
                ErrorKind::Timeout => "no answer to GET /health within 3s".into(),
                _ => "connection refused or broken: is the server running?".into(),
            },
        }),
    }
}

/// Seeds deterministic data through the API (for servers whose database we do not own):
/// `users` accounts, each with `tasks_per_user` tasks. Existing accounts (409) are kept as they are.
pub async fn seed_via_api(client: &HttpClient, target: &Target, data: &DataSpec) -> Result<(), LoadError> {
    let seed_err = |why: String| LoadError::Seed(why);
    for i in 0..data.users {
        let email = seed_email(i);
        match send(client, target, &ops::seed_account(i), SETUP_TIMEOUT).await {
            Reply::Answer { status: 201, .. } => {}
            Reply::Answer { status: 409, .. } => continue,
            other => return Err(seed_err(format!("registering {email}: {other:?}"))),
        }
        let token = login(client, target, &email).await?;
        for t in 0..data.tasks_per_user {
            match send(client, target, &ops::seed_task(i, t, data.seed, &token), SETUP_TIMEOUT).await {
                Reply::Answer { status: 201, .. } => {}
                other => return Err(seed_err(format!("creating a task for {email}: {other:?}"))),
            }
        }
    }
    Ok(())
}

/// Logs a seeded user in and returns the bearer token.
pub async fn login(client: &HttpClient, target: &Target, email: &str) -> Result<String, LoadError> {
    match send(client, target, &ops::login(email), SETUP_TIMEOUT).await {
        Reply::Answer { status: 200, body } => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_owned))
            .ok_or_else(|| LoadError::Seed(format!("login of {email} returned no token"))),
        other => Err(LoadError::Seed(format!("logging in {email}: {other:?} (is the data seeded?)"))),
    }
}

/// What a seeded user does before its first step, in either engine: signs in, then lists its
/// first tasks to learn their ids ([`ops::first_tasks`]). Returns the listing's body when it
/// answered as expected (a user sharing its account takes its share of it); a listing that
/// failed leaves the user to learn its tasks from its steps.
pub async fn sign_in(client: &HttpClient, target: &Target, user: &mut UserState) -> Result<Option<Bytes>, LoadError> {
    user.token = Some(login(client, target, &user.email).await?);
    let listing = ops::first_tasks(user);
    match send(client, target, &listing, SETUP_TIMEOUT).await {
        Reply::Answer { status, body } => {
            ops::observe(&listing, status, &body, user);
            Ok((status == listing.expect).then_some(body))
        }
        Reply::Failed(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_targets_are_accepted() {
        for ok in ["http://127.0.0.1:8080", "http://localhost:3000/", "http://[::1]:80", "http://127.1.2.3:1"] {
            assert!(Target::parse(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://10.0.0.1:80", "http://example.com", "https://127.0.0.1:443", "127.0.0.1:80", "http://192.168.1.1"]
        {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Target::parse("http://localhost:3000/").expect("ok").base, "http://localhost:3000");
        let refused = Target::parse("http://10.0.0.1:80").expect_err("not loopback").to_string();
        assert!(refused.contains("unless --remote"), "{refused}");
    }

    #[test]
    fn a_remote_target_is_accepted_only_when_allowed_and_still_only_over_http() {
        for ok in ["http://10.0.0.1:80", "http://example.com", "http://server.bench.svc.cluster.local:8080"] {
            assert!(Target::parse_with(ok, Reach::Anywhere).is_ok(), "{ok}");
        }
        assert!(Target::parse_with("https://example.com", Reach::Anywhere).is_err());
        assert_eq!(
            Target::parse_with("http://server.bench:8080/", Reach::Anywhere).expect("ok").base,
            "http://server.bench:8080"
        );
    }
}
