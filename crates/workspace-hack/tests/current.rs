//! Every workspace crate depends on `workspace-hack`; without it, `cargo test -p <crate>` after
//! `cargo test --workspace` rebuilds the dependencies whose features differ. `cargo hakari
//! manage-deps` adds the line (and `cargo hakari generate` refreshes the crate's dependency list
//! after a dependency or feature change; both in the README's Development section).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::process::Command;

/// The docs/ references of comments and READMEs (one test binary for the crate).
mod doc_links;

#[test]
fn every_workspace_crate_depends_on_the_workspace_hack() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    assert!(
        packages.len() > 10,
        "the workspace was not found: {metadata}"
    );
    let missing: Vec<&str> = packages
        .iter()
        .filter(|p| p["name"] != "workspace-hack")
        .filter(|p| {
            !p["dependencies"].as_array().unwrap().iter().any(|d| {
                d["name"] == "workspace-hack" && d["kind"].is_null() && d["path"].is_string()
            })
        })
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "crates without the workspace-hack dependency: {missing:?}; run `cargo hakari \
         manage-deps` (cargo install cargo-hakari --locked), then `cargo hakari generate`"
    );
}
