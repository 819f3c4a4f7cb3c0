//! The README's crate table is the workspace's real dependency graph, and the crates that must
//! stay lean (the servers, which are what is measured; the report, which never measures) do not
//! link what they must not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo).args(args).current_dir(workspace()).output().expect("cargo runs");
    assert!(out.status.success(), "cargo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

/// `crate -> its normal dependencies among the workspace's crates`, from `cargo metadata`.
fn real_graph() -> BTreeMap<String, BTreeSet<String>> {
    let meta: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps", "--locked"]))
            .expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(*d))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// The same, from the README's table (`| crate, crate | dep, dep |`, "none" for no dependencies).
fn readme_graph() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let table = readme.split("| crate | depends on |").nth(1).expect("the README has the crate dependency table");
    let mut graph = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 2, "a row of two cells: {row}");
        let list = |cell: &str| -> BTreeSet<String> {
            cell.split(',')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .filter(|c| !c.is_empty() && c != "none")
                .collect()
        };
        for krate in list(cells[0]) {
            assert!(graph.insert(krate.clone(), list(cells[1])).is_none(), "{krate} appears twice");
        }
    }
    graph
}

#[test]
fn the_readme_crate_table_is_the_workspace_graph() {
    assert_eq!(readme_graph(), real_graph(), "README's table (left) against Cargo.toml (right)");
}

/// Every package in the normal-dependency tree of `packages` built together (one invocation, so
/// features unify as they do when `taskbench run` builds both servers).
fn normal_tree(packages: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["tree", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}"];
    args.extend(packages.iter().flat_map(|p| ["-p", *p]));
    cargo(&args).lines().filter_map(|l| l.split_whitespace().next().map(str::to_owned)).collect()
}

#[test]
fn the_servers_and_the_report_do_not_link_what_they_must_not() {
    let harness_only = [
        "testcontainers",
        "testcontainers-modules",
        "bollard",
        "goose",
        "reqwest",
        "tempfile",
        "sysinfo",
        "nix",
        "taskbench-provision",
    ];
    for servers in [&["taskbench-axum"][..], &["taskbench-actix"], &["taskbench-axum", "taskbench-actix"]] {
        let tree = normal_tree(servers);
        assert!(tree.contains("sqlx"), "{servers:?}: the tree was read: {tree:?}");
        for banned in harness_only {
            assert!(!tree.contains(banned), "{servers:?} link {banned}");
        }
    }
    let report = normal_tree(&["taskbench-report"]);
    assert!(report.contains("plotters"), "the report's tree was read: {report:?}");
    for banned in ["goose", "reqwest", "hyper", "tokio-tungstenite", "taskbench-loadgen", "sqlx"] {
        assert!(!report.contains(banned), "taskbench-report links {banned}");
    }
}
