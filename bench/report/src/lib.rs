//! taskbench-report: what a `taskbench run` measured (`results.json`, a versioned schema), the
//! statistics over repeats, and everything rendered from it: charts, `report.md`, `report.html`
//! and the CI comparison. Nothing here measures; it only reads and writes results.

pub mod bencher;
mod charts;
pub mod compare;
mod document;
pub mod fixture;
pub mod gate;
pub mod metric;
pub mod model;
pub mod render;
pub mod stats;
pub mod summary;

pub use model::{Results, SCHEMA_VERSION};
pub use render::{RenderError, Rendered, markdown, terminal_summary, write_report};
