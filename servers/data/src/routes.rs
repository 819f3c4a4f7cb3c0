//! The route table: every path of the API and the operation each method reaches there. Both
//! routers are built from it, the `allow` header of a 405 comes from it, and a test holds the
//! OpenAPI document to it.

/// Every operation of the API: the closed set both servers must route. Each server maps it to
/// its handler in one exhaustive `match`, so an operation added here, or to [`ROUTES`], without a
/// handler in both frameworks does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    Metrics,
    OpenApi,
    Plaintext,
    Json,
    Register,
    Login,
    Me,
    ListTasks,
    CreateTask,
    GetTask,
    UpdateTask,
    DeleteTask,
}

/// The methods the table routes. HEAD is not one: a GET route answers it too (as HTTP says, and
/// as Axum does by itself), so the table cannot route HEAD elsewhere by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One path of the API and the operation each method reaches there.
pub struct Route {
    /// The pattern as both routers and the metrics label write it (`{id}` for a parameter).
    pub path: &'static str,
    pub operations: &'static [(Method, Operation)],
    /// The `allow` value of this path's 405, built from `operations` at compile time so that it
    /// cannot drift from them and a 405 costs no allocation.
    allow: [u8; ALLOW_CAPACITY],
    allow_len: usize,
}

/// Room for every method once: "GET, HEAD, POST, PATCH, DELETE".
const ALLOW_CAPACITY: usize = 30;

impl Route {
    /// Panics (at compile time, as [`ROUTES`] is a constant) when a method is listed twice: each
    /// method of a path reaches exactly one operation.
    const fn new(path: &'static str, operations: &'static [(Method, Operation)]) -> Self {
        let mut allow = [0; ALLOW_CAPACITY];
        let mut allow_len = 0;
        let mut i = 0;
        while i < operations.len() {
            let method = operations[i].0;
            let mut j = 0;
            while j < i {
                assert!(operations[j].0 as u8 != method as u8, "a route lists a method twice");
                j += 1;
            }
            allow_len = push_method(&mut allow, allow_len, method.as_str());
            if matches!(method, Method::Get) {
                allow_len = push_method(&mut allow, allow_len, "HEAD");
            }
            i += 1;
        }
        Self { path, operations, allow, allow_len }
    }

    /// The methods this path answers, as a 405's `allow` header lists them: the table's order,
    /// HEAD right after GET ("GET, HEAD, POST").
    pub const fn allow(&self) -> &str {
        match std::str::from_utf8(self.allow.split_at(self.allow_len).0) {
            Ok(allow) => allow,
            Err(_) => panic!("method names are ASCII"),
        }
    }
}

/// Appends `method` to an `allow` list being built, after ", " unless it is the first.
const fn push_method(allow: &mut [u8; ALLOW_CAPACITY], mut len: usize, method: &str) -> usize {
    let method = method.as_bytes();
    let separator = if len > 0 { 2 } else { 0 };
    assert!(len + separator + method.len() <= ALLOW_CAPACITY, "an allow list outgrew ALLOW_CAPACITY");
    if len > 0 {
        allow[len] = b',';
        allow[len + 1] = b' ';
        len += 2;
    }
    let mut i = 0;
    while i < method.len() {
        allow[len] = method[i];
        len += 1;
        i += 1;
    }
    len
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("operations", &self.operations)
            .field("allow", &self.allow())
            .finish()
    }
}

/// Every route of the API with the operation each method reaches, in one place: both routers are
/// built from it, the `allow` header of a 405 comes from it, and a test holds the OpenAPI
/// document to it. The order is the order the routers are built in.
pub const ROUTES: &[Route] = {
    use Method::*;
    use Operation::*;
    &[
        Route::new("/health", &[(Get, Health)]),
        Route::new("/metrics", &[(Get, Metrics)]),
        Route::new("/openapi.json", &[(Get, OpenApi)]),
        Route::new("/bench/plaintext", &[(Get, Plaintext)]),
        Route::new("/bench/json", &[(Get, Json)]),
        Route::new("/api/v1/auth/register", &[(Post, Register)]),
        Route::new("/api/v1/auth/login", &[(Post, Login)]),
        Route::new("/api/v1/auth/me", &[(Get, Me)]),
        Route::new("/api/v1/tasks", &[(Get, ListTasks), (Post, CreateTask)]),
        Route::new("/api/v1/tasks/{id}", &[(Get, GetTask), (Patch, UpdateTask), (Delete, DeleteTask)]),
    ]
};

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn allow_header_comes_from_the_route_table() {
        let err = crate::http::method_not_allowed("/api/v1/tasks/{id}");
        assert_eq!(err.headers(), Some(("allow", "GET, HEAD, PATCH, DELETE")));
        // The values on the wire, written out: what the table derives must not change them.
        let allows: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.path, r.allow())).collect();
        assert_eq!(
            allows,
            [
                ("/health", "GET, HEAD"),
                ("/metrics", "GET, HEAD"),
                ("/openapi.json", "GET, HEAD"),
                ("/bench/plaintext", "GET, HEAD"),
                ("/bench/json", "GET, HEAD"),
                ("/api/v1/auth/register", "POST"),
                ("/api/v1/auth/login", "POST"),
                ("/api/v1/auth/me", "GET, HEAD"),
                ("/api/v1/tasks", "GET, HEAD, POST"),
                ("/api/v1/tasks/{id}", "GET, HEAD, PATCH, DELETE"),
            ]
        );
    }

    #[test]
    fn each_path_and_each_operation_is_in_the_table_once() {
        // A second entry for a path would make Axum panic at startup and Actix shadow it.
        let paths: HashSet<&str> = ROUTES.iter().map(|r| r.path).collect();
        assert_eq!(paths.len(), ROUTES.len(), "{ROUTES:#?}");
        let operations: Vec<Operation> = ROUTES.iter().flat_map(|r| r.operations).map(|&(_, op)| op).collect();
        assert_eq!(operations.iter().collect::<HashSet<_>>().len(), operations.len(), "{ROUTES:#?}");
    }
}
