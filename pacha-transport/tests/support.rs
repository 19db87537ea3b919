//! Plans built by hand for transport tests.

use std::path::Path;
use std::sync::Arc;

use pacha_core::{
    ContentHash, Mode, NodePath, Plan, PlannedFile, PlannedScript, SshSettings, Stage, Target, TransportKind,
};

pub(crate) fn target(host: &str, root: &Path, transport: TransportKind, ssh: SshSettings) -> Target {
    Target {
        transport,
        host: host.to_owned(),
        port: None,
        user: None,
        root: root.display().to_string(),
        ssh,
    }
}

pub(crate) fn file(path: &str, content: &[u8], mode: &str) -> PlannedFile {
    PlannedFile {
        destination: NodePath::parse(path).unwrap(),
        app: "app".into(),
        source: format!("templates/app/default{path}"),
        owner: None,
        group: None,
        mode: Mode::parse(mode).unwrap(),
        dir_mode: Mode::EXECUTABLE,
        content: Arc::from(content),
        sha256: ContentHash::of(content),
        secret: false,
        validate: None,
    }
}

pub(crate) fn script(stage: Stage, phase: &str, name: &str, body: &str) -> PlannedScript {
    PlannedScript {
        stage,
        phase: phase.into(),
        name: name.into(),
        source: format!("scripts/{stage}/{phase}/{name}"),
        content: Arc::from(body.as_bytes()),
        sha256: ContentHash::of(body.as_bytes()),
        handles: Vec::new(),
    }
}

pub(crate) fn plan(node: &str, target: Target, files: Vec<PlannedFile>, scripts: Vec<PlannedScript>) -> Plan {
    Plan {
        node: node.into(),
        state: "production".into(),
        target,
        files,
        scripts,
        secrets: Vec::new(),
        absent: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
        script_timeout: None,
        keep_on_failure: false,
        expect: None,
        confirm_ssh: None,
    }
}

pub(crate) fn ssh_settings(sshd: &fixtures::Sshd) -> SshSettings {
    SshSettings {
        config_file: Some(sshd.config.clone()),
        known_hosts: Some(sshd.known_hosts.clone()),
        connect_timeout: Some(5),
        ..SshSettings::default()
    }
}

/// File names full of shell syntax.
pub(crate) const NASTY_PATHS: [&str; 6] = [
    "/etc/it's here.conf",
    "/etc/$(touch canary).conf",
    "/etc/a;touch canary;.conf",
    "/etc/new\nline.conf",
    "/etc/`touch canary`",
    "/etc/back\\slash \"dq\"",
];

/// Planned files at [`NASTY_PATHS`] whose contents would create `canary` if a shell ran them.
pub(crate) fn nasty_files(canary: &Path) -> ([&'static str; 6], Vec<PlannedFile>) {
    let files = NASTY_PATHS
        .iter()
        .map(|path| {
            file(
                path,
                format!("$(touch {}) '\"; x\n", canary.display()).as_bytes(),
                "0644",
            )
        })
        .collect();
    (NASTY_PATHS, files)
}
