//! Rendering a whole fleet: 10,000 nodes in 100 meta nodes, 20 templates each.
//!
//! Run with `cargo bench -p pacha-render`. Target: every plan of the fleet in under 2 s on a
//! 2-core machine.

use std::sync::LazyLock;

use pacha_core::{EngineError, Master, Rendering};
use pacha_render::Renderer;

struct Fleet {
    _dir: tempfile::TempDir,
    master: Master,
}

static FLEET: LazyLock<Fleet> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let shape = fixtures::FleetShape {
        nodes: 10_000,
        metas: 100,
        templates: 20,
    };
    fixtures::generate_fleet(dir.path(), shape, &|_| String::new());
    let master = Master::open(dir.path()).expect("generated master opens");
    Fleet { _dir: dir, master }
});

fn main() {
    divan::main();
}

/// Loading the master: pacha.yaml and 10,100 node files.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn open_master() -> Master {
    Master::open(FLEET._dir.path()).expect("opens")
}

/// Every plan of the fleet (200,000 files), on all cores, from a cold renderer.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn render_fleet() -> usize {
    let fleet = &*FLEET;
    let renderer = Renderer::new(&fleet.master);
    let mut files = 0;
    Rendering::new(&fleet.master, &renderer)
        .render("fleet", "production", None, |plan| {
            files += plan.files.len();
            Ok::<(), EngineError>(())
        })
        .expect("renders");
    assert_eq!(files, 200_000);
    files
}

/// One node's plan with warm caches: the per-node cost.
#[divan::bench]
fn render_one_node(bencher: divan::Bencher<'_, '_>) {
    let fleet = &*FLEET;
    let renderer = Renderer::new(&fleet.master);
    renderer.plan("node1", "production").expect("renders");
    bencher.bench_local(|| renderer.plan("node1", "production").expect("renders"));
}
