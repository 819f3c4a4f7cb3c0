//! Spawning either server in-process on port 0 against a fresh database (zero-to-production's
//! `spawn_app`), with a client that talks to it over real HTTP on loopback.

use std::net::SocketAddr;

use taskbench_data::{Service, ServiceConfig};
use taskbench_provision as provision;

/// The frameworks taskbench compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framework {
    Axum,
    Actix,
}

impl Framework {
    pub const ALL: [Framework; 2] = [Framework::Axum, Framework::Actix];

    pub fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix",
        }
    }
}

/// A running app on its own database. Dropping it stops the server.
#[derive(Debug)]
pub struct TestApp {
    pub framework: Framework,
    pub addr: SocketAddr,
    pub database_url: String,
    pub service: Service,
    pub client: reqwest::Client,
    stop: Option<Stop>,
}

#[derive(Debug)]
enum Stop {
    Axum(tokio::sync::oneshot::Sender<()>),
    Actix(actix_web::dev::ServerHandle),
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match self.stop.take() {
            Some(Stop::Axum(tx)) => drop(tx.send(())),
            // `stop` sends the command at once; the returned future only waits for completion.
            Some(Stop::Actix(handle)) => drop(handle.stop(false)),
            None => {}
        }
    }
}

/// Starts `framework`'s app on a fresh, migrated database and waits until it accepts requests.
pub async fn spawn_app(framework: Framework) -> TestApp {
    spawn_app_with(framework, ServiceConfig::for_tests()).await
}

pub async fn spawn_app_with(framework: Framework, config: ServiceConfig) -> TestApp {
    spawn_app_with_on(framework, config, "127.0.0.1").await
}

/// [`spawn_app`] on another loopback address (`127.0.0.2`, say), to prove that nothing assumes
/// 127.0.0.1.
pub async fn spawn_app_on(framework: Framework, host: &str) -> TestApp {
    spawn_app_with_on(framework, ServiceConfig::for_tests(), host).await
}

async fn spawn_app_with_on(framework: Framework, config: ServiceConfig, host: &str) -> TestApp {
    let database_url = provision::fresh_test_database().await;
    let service = Service::connect(&database_url, &config).await.expect("connecting the service to its test database");
    let mut app = spawn_service_on(framework, service, host).await;
    app.database_url = database_url;
    app
}

/// Serves an already built `service` (e.g. one whose database is unreachable).
pub async fn spawn_service(framework: Framework, service: Service) -> TestApp {
    spawn_service_on(framework, service, "127.0.0.1").await
}

async fn spawn_service_on(framework: Framework, service: Service, host: &str) -> TestApp {
    let database_url = String::new();
    let listener = std::net::TcpListener::bind((host, 0)).expect("binding a loopback port");
    let addr = listener.local_addr().expect("local address");
    let stop = match framework {
        Framework::Axum => {
            listener.set_nonblocking(true).expect("nonblocking listener");
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let service = service.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = rx.await;
                };
                if let Err(e) = taskbench_axum::serve(listener, service, shutdown).await {
                    tracing::error!(error = %e, "axum test server failed");
                }
            });
            Stop::Axum(tx)
        }
        Framework::Actix => {
            let server = taskbench_actix::server(listener, service.clone(), 2).expect("building the actix server");
            let handle = server.handle();
            // Actix runs its own System per server; give it a thread of its own.
            std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
            Stop::Actix(handle)
        }
    };
    let client = reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client");
    TestApp { framework, addr, database_url, service, client, stop: Some(stop) }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Registers a user and returns its bearer token.
    pub async fn user(&self, email: &str) -> String {
        let credentials = serde_json::json!({"email": email, "password": "correct horse", "name": "Test User"});
        let res =
            self.client.post(self.url("/api/v1/auth/register")).json(&credentials).send().await.expect("register");
        assert_eq!(res.status(), 201, "registering {email}");
        let login = serde_json::json!({"email": email, "password": "correct horse"});
        let res = self.client.post(self.url("/api/v1/auth/login")).json(&login).send().await.expect("login");
        assert_eq!(res.status(), 200, "logging in {email}");
        let body: serde_json::Value = res.json().await.expect("login body");
        body["token"].as_str().expect("token").to_owned()
    }
}
