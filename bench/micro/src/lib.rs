//! Shared fixtures and hot paths of the micro-benchmarks. The criterion suite (wall time) and the
//! Callgrind suite (instruction counts) both call these functions, so both measure the same code
//! on the same inputs; the bench files only drive them.

pub mod codec;
pub mod fixture;
pub mod on_actix;
pub mod on_axum;

use std::future::Future;

use futures_util::FutureExt as _;

/// What a whole in-memory request produced: the status and the collected body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: bytes::Bytes,
}

/// Polls a future that never waits (an extractor over an in-memory request) to its end, once.
/// Extractors are measured without an executor around them, so a comparison of two extractors
/// is not a comparison of two runtimes' `block_on`.
fn complete<F: Future>(future: F) -> F::Output {
    future.now_or_never().expect("an in-memory extractor completes on its first poll")
}
