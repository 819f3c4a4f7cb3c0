//! Renders a report of constructed results into a directory, to look at the report without a run:
//! `cargo run -p taskbench-report --example fixture_report -- /tmp/report`.

use std::path::PathBuf;

use taskbench_report::fixture::{Shape, results};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: fixture_report <output directory>")?);
    std::fs::create_dir_all(&dir)?;
    let shapes = [Shape::new("axum", 1000.0, 800.0), Shape::new("actix", 1100.0, 700.0)];
    let r = results(&["crud-mix", "read-heavy"], &shapes, 3, 10, 1);
    let rendered = taskbench_report::write_report(&r, &dir)?;
    eprint!("{}", taskbench_report::terminal_summary(&r));
    eprintln!("wrote {}", rendered.html.display());
    Ok(())
}
