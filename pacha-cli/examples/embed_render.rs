//! Renders every leaf of NODE in STATE into OUT/<node>/<path>, exactly as `pacha render --out`.
//!
//! cargo run -p pacha-cli --example embed_render -- MASTER NODE STATE OUT

use pacha_core::{EngineError, Master, Rendering};
use pacha_render::Renderer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, node, state, out] = args.as_slice() else {
        return Err("usage: embed_render MASTER NODE STATE OUT".into());
    };
    let master = Master::open(dir.as_ref())?;
    let renderer = Renderer::new(&master);
    let rendering = Rendering::new(&master, &renderer);
    rendering.render(node, state, Some(out.as_ref()), |_plan| Ok::<(), EngineError>(()))?;
    Ok(())
}
