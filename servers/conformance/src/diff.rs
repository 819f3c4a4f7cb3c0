//! Transcripts of request/response exchanges, normalised (ids, timestamps, tokens) so that two
//! servers on two databases can be compared, and a readable diff when they differ.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

/// The response headers whose values are part of the contract. Hop-by-hop headers
/// (`connection`, `keep-alive`) are left out on purpose: connection reuse is the HTTP stack's
/// business (Actix closes a connection whose request body went unread, hyper drains it), not
/// the API's.
pub const HEADERS_THAT_MATTER: &[&str] = &[
    "content-type",
    "content-encoding",
    "location",
    "www-authenticate",
    "allow",
    "vary",
    "x-request-id",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// A response body as compared: JSON structurally, anything else as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Empty,
    Json(Value),
    Text(String),
}

/// One request of a script and what a server answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub step: String,
    pub request: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Body,
}

/// Replaces each distinct UUID with `<uuid-N>` (N by first appearance, so the same entity has the
/// same placeholder in both transcripts), each timestamp with `<timestamp>` and each JWT with `<jwt>`.
#[derive(Debug, Default)]
pub struct Normalizer {
    uuids: HashMap<String, usize>,
}

impl Normalizer {
    pub fn exchange(&mut self, mut ex: Exchange) -> Exchange {
        ex.request = self.text(&ex.request);
        for value in ex.headers.values_mut() {
            *value = self.text(value);
        }
        ex.body = match ex.body {
            Body::Json(v) => Body::Json(self.json(v)),
            Body::Text(t) => Body::Text(self.text(&t)),
            Body::Empty => Body::Empty,
        };
        ex
    }

    fn json(&mut self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, self.json(v))).collect()),
            other => other,
        }
    }

    pub fn text(&mut self, s: &str) -> String {
        if is_timestamp(s) {
            return "<timestamp>".into();
        }
        if is_jwt(s) {
            return "<jwt>".into();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while !rest.is_empty() {
            if rest.len() >= 36 && rest.is_char_boundary(36) && is_uuid(&rest[..36]) {
                let next = self.uuids.len() + 1;
                let n = *self.uuids.entry(rest[..36].to_ascii_lowercase()).or_insert(next);
                out.push_str(&format!("<uuid-{n}>"));
                rest = &rest[36..];
            } else {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// The API's one timestamp shape: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn is_timestamp(s: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    s.len() == SHAPE.len() && s.bytes().zip(SHAPE).all(|(b, &p)| if p == b'd' { b.is_ascii_digit() } else { b == p })
}

fn is_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Compares two normalised transcripts step by step. `Err` holds a readable report of every
/// differing step with a unified diff of the two exchanges.
pub fn compare(left_name: &str, left: &[Exchange], right_name: &str, right: &[Exchange]) -> Result<(), String> {
    let mut report = String::new();
    if left.len() != right.len() {
        report.push_str(&format!("{left_name} ran {} steps, {right_name} ran {}\n", left.len(), right.len()));
    }
    for (i, (a, b)) in left.iter().zip(right).enumerate() {
        if a == b {
            continue;
        }
        let a_text = serde_json::to_string_pretty(a).unwrap_or_default() + "\n";
        let b_text = serde_json::to_string_pretty(b).unwrap_or_default() + "\n";
        let diff = similar::TextDiff::from_lines(&a_text, &b_text);
        report.push_str(&format!("step {} `{}` ({}): {left_name} and {right_name} differ\n", i + 1, a.step, a.request));
        report.push_str(&diff.unified_diff().context_radius(3).header(left_name, right_name).to_string());
        report.push('\n');
    }
    if report.is_empty() { Ok(()) } else { Err(report) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exchange(status: u16, body: Value) -> Exchange {
        Exchange {
            step: "create".into(),
            request: "POST /api/v1/tasks".into(),
            status,
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            body: Body::Json(body),
        }
    }

    #[test]
    fn ids_and_timestamps_normalise_by_first_appearance() {
        let (mut n1, mut n2) = (Normalizer::default(), Normalizer::default());
        let a = n1.exchange(exchange(
            201,
            json!({"id": "0193a6f0-0000-7000-8000-000000000001", "created_at": "2026-11-20T23:00:00.123456Z"}),
        ));
        let b = n2.exchange(exchange(
            201,
            json!({"id": "0193a6f0-ffff-7000-8000-00000000abcd", "created_at": "2026-11-21T01:02:03.000001Z"}),
        ));
        assert_eq!(a, b);
        assert_eq!(a.body, Body::Json(json!({"id": "<uuid-1>", "created_at": "<timestamp>"})));
        assert_eq!(n1.text("/api/v1/tasks/0193A6F0-0000-7000-8000-000000000001"), "/api/v1/tasks/<uuid-1>");
    }

    #[test]
    fn comparer_catches_a_difference_and_shows_it() {
        let mut n = Normalizer::default();
        let left = vec![n.exchange(exchange(201, json!({"title": "a"})))];
        let right = vec![n.exchange(exchange(422, json!({"title": "a"})))];
        let report = compare("axum", &left, "actix", &right).expect_err("a status difference must be reported");
        assert!(report.contains("step 1 `create`"), "{report}");
        assert!(report.contains("-  \"status\": 201") && report.contains("+  \"status\": 422"), "{report}");

        let extra_header = {
            let mut ex = left[0].clone();
            ex.headers.insert("allow".into(), "GET".into());
            ex
        };
        assert!(compare("axum", &left, "actix", &[extra_header]).is_err());
        assert!(compare("axum", &left, "actix", &left).is_ok());
    }

    #[test]
    fn timestamp_shape_is_exact() {
        assert!(is_timestamp("2026-11-20T23:00:00.123456Z"));
        assert!(!is_timestamp("2026-11-20T23:00:00.123Z"));
        assert!(!is_timestamp("2026-11-20T23:00:00.123456+00:00"));
    }
}
