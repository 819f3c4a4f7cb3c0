//! taskbench-report: what a `taskbench run` measured (`results.json`, a versioned schema), the
//! statistics over repeats, and everything rendered from it: charts, `report.md`, `report.html`
//! and the CI comparison. Nothing here measures; it only reads and writes results.

pub mod bencher;
pub mod compare;
pub mod fixture;
pub mod model;
pub mod stats;
pub mod summary;

pub use model::{Results, SCHEMA_VERSION};
