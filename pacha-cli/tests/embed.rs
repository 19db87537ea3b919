//! Another Rust program embeds pacha the way the CLI does: a push driven from library code
//! alone (the README shows the same lines).

use pacha_core::{Master, Outcome, PushOptions, Quiet, push};
use pacha_render::Renderer;
use pacha_transport::SshConnector;

#[test]
fn push_from_library_code() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    fixtures::copy_master("demo", tmp.path())?;

    // The embedding program: open a master, render every node of a meta node, push.
    let master = Master::open(tmp.path())?;
    let renderer = Renderer::new(&master);
    let plans = master
        .expand("webservers")?
        .iter()
        .map(|node| renderer.plan(node, "production"))
        .collect::<Result<Vec<_>, _>>()?;
    let connector = SshConnector::new(tmp.path().join("ssh"))?;
    let reports = push(&plans, &connector, &PushOptions::default(), &Quiet);

    assert!(
        reports.iter().all(|report| report.outcome == Outcome::Changed),
        "{reports:?}"
    );
    let site = std::fs::read_to_string(tmp.path().join("nodes-root/web2/etc/nginx/sites/site.conf"))?;
    assert!(site.contains("server_name web2.example.com;"), "{site}");
    Ok(())
}
