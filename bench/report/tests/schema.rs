//! `results.schema.json` is the published contract of `results.json`: it must match the types,
//! and documents the types write must validate against it.

use std::path::PathBuf;

use taskbench_report::fixture::{Shape, results};
use taskbench_report::{Results, SCHEMA_VERSION};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results.schema.json")
}

#[test]
fn the_committed_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&Results::json_schema()).expect("serializes") + "\n";
    // Compared with the file as it was before any update, so this test fails whenever the
    // committed schema was stale, UPDATE_SCHEMA or not; UPDATE_SCHEMA also rewrites it.
    let committed = std::fs::read_to_string(committed_path()).expect("results.schema.json is committed");
    if committed == generated {
        return;
    }
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(committed_path(), &generated).expect("writing the schema");
        panic!(
            "results.schema.json was out of date and is now rewritten: review and commit it, bump SCHEMA_VERSION \
             (now {SCHEMA_VERSION}) if a field changed meaning or went away, and run the tests again"
        );
    }
    panic!(
        "results.schema.json is out of date: run `UPDATE_SCHEMA=1 cargo test -p taskbench-report --test schema`, \
         and bump SCHEMA_VERSION (now {SCHEMA_VERSION}) if a field changed meaning or went away"
    );
}

#[test]
fn written_results_validate_and_read_back() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).expect("committed")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let results =
        results(&["crud-mix"], &[Shape::new("axum", 1000.0, 800.0), Shape::new("actix", 1100.0, 700.0)], 3, 3, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    results.write(dir.path()).expect("writes");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).expect("written")).expect("json");
    let errors: Vec<String> = validator.iter_errors(&value).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(Results::read(dir.path()).expect("reads back"), results);

    let mut wrong = value.clone();
    wrong["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
    std::fs::write(dir.path().join("results.json"), wrong.to_string()).expect("write");
    let err = Results::read(dir.path()).expect_err("a newer version is refused").to_string();
    assert!(err.contains(&format!("schema_version {}", SCHEMA_VERSION + 1)), "{err}");
}
