//! Running the built `pacha` binary in tests.

use std::path::Path;

use assert_cmd::Command;

/// `pacha` with a clean environment: no colour, no inherited master.
pub(crate) fn pacha() -> Command {
    let mut command = Command::cargo_bin("pacha").expect("the pacha binary is built");
    command.env_remove("PACHA_MASTER").env("NO_COLOR", "1");
    command
}

/// `pacha --master DIR ARGS…`; returns (exit code, stdout, stderr).
pub(crate) fn run_in(master: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(pacha().arg("--master").arg(master).args(args))
}

/// Runs `command`; returns (exit code, stdout, stderr).
pub(crate) fn outcome(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("pacha runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A master in a temp folder whose nodes are reached over a test sshd: each node in `nodes`
/// gets `root` under the temp folder and the sshd alias of its name.
pub(crate) struct SshMaster {
    pub dir: tempfile::TempDir,
    pub sshd: fixtures::Sshd,
}

impl SshMaster {
    pub(crate) fn new(nodes: &[&str]) -> SshMaster {
        let sshd = fixtures::Sshd::start(nodes);
        let dir = tempfile::tempdir().expect("temp dir");
        fixtures::write(
            dir.path(),
            "pacha.yaml",
            format!(
                "states: [default, production]\nvars:\n  greeting: hello\n{}",
                sshd.pacha_ssh_settings()
            ),
        );
        fixtures::write(dir.path(), "templates/motd/app.yaml", "dest: /etc\n");
        fixtures::write(
            dir.path(),
            "templates/motd/default/motd.hbs",
            "{{greeting}} from {{pacha.node}} ({{pacha.state}})\n",
        );
        fixtures::write(dir.path(), "templates/motd/default/app/app.conf", "port = 80\n");
        fixtures::write(
            dir.path(),
            "scripts/post/reload/10-reload",
            "#!/bin/sh\necho \"reloaded $PACHA_NODE\"\n",
        );
        for node in nodes {
            let master = SshMaster::node_text(node, &dir.path().join("roots").join(node));
            fixtures::write(dir.path(), &format!("nodes/{node}/{node}.conf"), master);
        }
        SshMaster { dir, sshd }
    }

    pub(crate) fn node_text(node: &str, root: &Path) -> String {
        format!(
            "host: {node}\nroot: {}\napps: [motd]\nscripts:\n  post: [reload]\n",
            root.display()
        )
    }

    pub(crate) fn root(&self, node: &str) -> std::path::PathBuf {
        self.dir.path().join("roots").join(node)
    }

    /// Runs pacha on this master with its own private SSH control folder.
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        outcome(self.command().args(args))
    }

    /// `pacha --master DIR` with this master's own private SSH control folder, for a test that
    /// sets more (standard input, the environment).
    pub(crate) fn command(&self) -> Command {
        let runtime = self.dir.path().join("run");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        let mut command = pacha();
        command
            .env("XDG_RUNTIME_DIR", &runtime)
            .arg("--master")
            .arg(self.dir.path());
        command
    }

    /// Rewrites `node`'s file as [`SshMaster::new`] made it, with `extra` lines appended.
    pub(crate) fn add_to_node(&self, node: &str, extra: &str) {
        let text = format!("{}{extra}", SshMaster::node_text(node, &self.root(node)));
        self.write(&format!("nodes/{node}/{node}.conf"), &text);
    }

    pub(crate) fn write(&self, path: &str, text: &str) {
        fixtures::write(self.dir.path(), path, text);
    }
}

impl Drop for SshMaster {
    fn drop(&mut self) {
        let runtime = self.dir.path().join("run");
        let _ = pacha().env("XDG_RUNTIME_DIR", &runtime).arg("disconnect").output();
    }
}
