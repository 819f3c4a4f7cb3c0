//! Test support for the reference service, and the proof that its two implementations are
//! identical on the wire: apps spawned on fresh databases, a scripted differential suite with a
//! readable diff, and validation of every response against the served OpenAPI document.

pub mod diff;
pub mod process;
pub mod schema;
pub mod script;
pub mod spawn;

pub use spawn::{Framework, TestApp, spawn_app, spawn_app_on};
