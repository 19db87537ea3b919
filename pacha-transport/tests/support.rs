//! Plans built by hand for transport tests.

use std::path::Path;
use std::sync::Arc;

use pacha_core::{
    ContentHash, Mode, NodePath, Plan, PlannedFile, PlannedScript, SshSettings, Stage, Target, TransportKind,
};

pub fn target(host: &str, root: &Path, transport: TransportKind, ssh: SshSettings) -> Target {
    Target {
        transport,
        host: host.to_owned(),
        port: None,
        user: None,
        root: root.display().to_string(),
        ssh,
    }
}

pub fn file(path: &str, content: &[u8], mode: &str) -> PlannedFile {
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
    }
}

pub fn script(stage: Stage, phase: &str, name: &str, body: &str) -> PlannedScript {
    PlannedScript {
        stage,
        phase: phase.into(),
        name: name.into(),
        source: format!("scripts/{stage}/{phase}/{name}"),
        content: Arc::from(body.as_bytes()),
        sha256: ContentHash::of(body.as_bytes()),
    }
}

pub fn plan(node: &str, target: Target, files: Vec<PlannedFile>, scripts: Vec<PlannedScript>) -> Plan {
    Plan {
        node: node.into(),
        state: "production".into(),
        target,
        files,
        scripts,
        secrets: Vec::new(),
    }
}

pub fn ssh_settings(sshd: &fixtures::Sshd) -> SshSettings {
    SshSettings {
        config_file: Some(sshd.config.clone()),
        known_hosts: Some(sshd.known_hosts.clone()),
        connect_timeout: Some(5),
        ..SshSettings::default()
    }
}
