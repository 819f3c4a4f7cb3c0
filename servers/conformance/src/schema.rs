//! Checks responses against the OpenAPI document the servers serve: status documented for the
//! operation, and the body valid against the documented schema (formats included).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::diff::Body;

/// Validates responses against one OpenAPI 3.1 document.
#[derive(Debug)]
pub struct OpenApiChecker {
    doc: Value,
    cache: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

impl OpenApiChecker {
    pub fn new(doc: Value) -> Self {
        Self { doc, cache: Mutex::new(HashMap::new()) }
    }

    /// `route` is the path template (`/api/v1/tasks/{id}`), `None` for an unknown route, whose
    /// answer must still be the documented error body.
    pub fn check(&self, method: &str, route: Option<&str>, status: u16, body: &Body) -> Result<(), String> {
        match method {
            // A CORS preflight is transport, not an operation: 204 with no body.
            "OPTIONS" if status == 204 && *body == Body::Empty => return Ok(()),
            "OPTIONS" => return Err(format!("preflight answered {status} {body:?}, expected 204 with no body")),
            // HEAD is GET without the body: the status must be one GET documents.
            "HEAD" if *body != Body::Empty => return Err(format!("HEAD answered with a body: {body:?}")),
            "HEAD" => return self.check_status("GET", route, status),
            _ => {}
        }
        let schema = match route {
            // 405 and 404-for-unknown-route are answered for any path; their body is the error shape.
            None => json!({"$ref": "#/components/schemas/ErrorBody"}),
            Some(_) if status == 405 => json!({"$ref": "#/components/schemas/ErrorBody"}),
            Some(route) => {
                let op = &self.doc["paths"][route][method.to_ascii_lowercase()];
                if op.is_null() {
                    return Err(format!("{method} {route} is not in the OpenAPI document"));
                }
                let response = &op["responses"][status.to_string()];
                if response.is_null() {
                    return Err(format!("{method} {route}: status {status} is not documented"));
                }
                match response["content"].as_object().and_then(|c| c.values().next()) {
                    Some(media) => media["schema"].clone(),
                    None => {
                        return match body {
                            Body::Empty => Ok(()),
                            _ => Err(format!("{method} {route} {status}: documented without a body, got one")),
                        };
                    }
                }
            }
        };
        let instance = match body {
            Body::Json(v) => v.clone(),
            Body::Text(t) => Value::String(t.clone()),
            Body::Empty => return Err(format!("{method} {route:?} {status}: documented with a body, got none")),
        };
        let validator = self.validator(&schema)?;
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {} {status}: body does not match the OpenAPI schema: {}",
                route.unwrap_or("(unknown route)"),
                errors.join("; ")
            ))
        }
    }

    fn check_status(&self, method: &str, route: Option<&str>, status: u16) -> Result<(), String> {
        let Some(route) = route else { return Ok(()) };
        let documented = &self.doc["paths"][route][method.to_ascii_lowercase()]["responses"][status.to_string()];
        if documented.is_null() { Err(format!("{method} {route}: status {status} is not documented")) } else { Ok(()) }
    }

    fn validator(&self, schema: &Value) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        let mut cache = self.cache.lock().map_err(|_| "validator cache poisoned".to_string())?;
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // The response schema refers to `#/components/...`, so it is validated inside a root
        // that carries the document's components.
        let root = json!({"components": self.doc["components"], "allOf": [schema]});
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the OpenAPI schema {schema} does not compile: {e}"))?;
        let validator = std::sync::Arc::new(validator);
        cache.insert(key, validator.clone());
        Ok(validator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> OpenApiChecker {
        OpenApiChecker::new(serde_json::from_slice(taskbench_data::openapi::document()).expect("document is JSON"))
    }

    #[test]
    fn a_task_missing_a_field_or_with_a_bad_enum_is_caught() {
        let task = json!({"id": "0193a6f0-0000-7000-8000-000000000001", "user_id": "0193a6f0-0000-7000-8000-000000000002",
            "title": "t", "description": null, "status": "todo", "priority": "medium", "due_at": null,
            "created_at": "2026-11-20T23:00:00.123456Z", "updated_at": "2026-11-20T23:00:00.123456Z"});
        let c = checker();
        c.check("GET", Some("/api/v1/tasks/{id}"), 200, &Body::Json(task.clone())).expect("a valid task passes");
        let mut bad = task.clone();
        bad["status"] = json!("archived");
        assert!(c.check("GET", Some("/api/v1/tasks/{id}"), 200, &Body::Json(bad)).is_err());
        let mut missing = task;
        missing.as_object_mut().expect("object").remove("title");
        assert!(c.check("GET", Some("/api/v1/tasks/{id}"), 200, &Body::Json(missing)).is_err());
        assert!(c.check("GET", Some("/api/v1/tasks/{id}"), 418, &Body::Empty).is_err());
    }
}
