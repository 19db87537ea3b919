//! Running the built `pacha` binary in tests.

use std::path::Path;

use assert_cmd::Command;

/// `pacha` with a clean environment: no colour, no inherited master.
pub fn pacha() -> Command {
    let mut command = Command::cargo_bin("pacha").expect("the pacha binary is built");
    command.env_remove("PACHA_MASTER").env("NO_COLOR", "1");
    command
}

/// `pacha --master DIR ARGS…`; returns (exit code, stdout, stderr).
pub fn run_in(master: &Path, args: &[&str]) -> (i32, String, String) {
    let output = pacha()
        .arg("--master")
        .arg(master)
        .args(args)
        .output()
        .expect("pacha runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
