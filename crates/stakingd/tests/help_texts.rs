//! No `stakingd … --help` prints a password: neither a database or broker URL from the
//! environment (`stakingd devnet --help` printed `STAKINGD_DEVNET_DATABASE_URL` with its
//! password, issue 15) nor a default.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::Path;
use std::process::Command;

#[test]
fn devnet_help_does_not_print_the_database_url_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(["devnet", "--help"])
        .env(
            "STAKINGD_DEVNET_DATABASE_URL",
            "postgres://postgres:hunter2-in-help@127.0.0.1/devnet",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("STAKINGD_DEVNET_DATABASE_URL"), "{help}");
    assert!(!help.contains("hunter2-in-help"), "{help}");
}

#[test]
fn no_help_text_of_any_subcommand_prints_a_password() {
    let leaks = testkit::help_password_leaks(Path::new(env!("CARGO_BIN_EXE_stakingd")));
    assert!(leaks.is_empty(), "{leaks:#?}");
}
