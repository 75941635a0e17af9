//! Side by side on one adapter (llvmpipe in CI, or a real GPU): attnflow's attention
//! evaluation against the simplest online-softmax kernel (`kernels/simple.wgsl`) and
//! attnflow's kernel before the generated ones (`kernels/attention_v1.wgsl`), same tokens,
//! same process; the baselines' outputs are checked against attnflow's. Prints one table and
//! writes target/side-by-side.json. The README's ratios come from this.
//!
//!     cargo bench --bench side_by_side
//!     ATTNFLOW_SIDE_BY_SIDE=3:4096,64:2048 cargo bench --bench side_by_side

use std::sync::Arc;

use attnflow::bench::baselines::side_by_side;
use attnflow::gpu::GpuContext;

fn main() {
    let cases: Vec<(usize, usize)> = std::env::var("ATTNFLOW_SIDE_BY_SIDE")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|c| {
                    let (d, n) = c.split_once(':').expect("d:n");
                    (d.trim().parse().expect("d"), n.trim().parse().expect("n"))
                })
                .collect()
        })
        .unwrap_or_else(|| vec![(3, 4096), (16, 4096), (64, 2048)]);
    let ctx = match GpuContext::new() {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!("no GPU adapter, nothing to compare: {e}");
            return;
        }
    };
    println!("side by side on {}", ctx.describe());
    println!(
        "{:>4} {:>6}  {:<28} {:>12} {:>11} {:>10}",
        "d", "n", "kernel", "pairs/s", "s/eval", "rel. diff"
    );
    let mut all = Vec::new();
    for (d, n) in cases {
        let r = side_by_side(ctx.clone(), n, d, 5).expect("side by side");
        for k in r.kernels() {
            println!(
                "{d:>4} {n:>6}  {:<28} {:>12.3e} {:>11.3e} {:>10.1e}",
                k.kernel, k.pairs_per_second, k.seconds.median, k.relative_difference
            );
        }
        println!(
            "{d:>4} {n:>6}  attnflow / simple = {:.2}x, / attention_v1 = {:.2}x, / as shipped = {:.2}x",
            r.ratio_to_simple, r.ratio_to_v1, r.ratio_to_v1_as_shipped
        );
        all.push(r);
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/side-by-side.json");
    if let Ok(text) = serde_json::to_string_pretty(&all) {
        let _ = std::fs::write(&path, text);
        println!("wrote {}", path.display());
    }
}
