//! The GPU report behind `scripts/gpu-report` (`attnflow bench --report DIR`): on the machine's
//! best adapter, pairs per second for n = 2^14, 2^17, 2^20 and d = 3, 16, 64, 128, seconds per
//! RK4 step at n = 10^6 (d = 3), the cpu backend in the same run (at the sizes it finishes in
//! seconds) and the ratio to it, the side-by-side ratios to the baseline kernels, the wall
//! time of the default `phase-diagram` experiment, and the op counts of nothing: only what was
//! measured here. Writes DIR/gpu-report.json and DIR/gpu-report.md.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::baselines::{SideBySide, side_by_side};
use super::{BenchConfig, BenchReport, run};
use crate::config::BackendChoice;
use crate::error::{Error, Result, file_error};
use crate::gpu::GpuContext;
use crate::model::Mask;

/// One size of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct GridRow {
    pub n: usize,
    pub d: usize,
    pub gpu: BenchReport,
    /// The cpu backend at the same size, when it runs in seconds.
    pub cpu: Option<BenchReport>,
    pub ratio_to_cpu: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: String,
    pub software_adapter: bool,
    pub attnflow_version: &'static str,
    pub grid: Vec<GridRow>,
    /// Seconds per RK4 step (median) at n = `rk4_step_n` (10^6), d = 3.
    pub rk4_step_n: usize,
    pub rk4_step_seconds: Option<f64>,
    pub side_by_side: Vec<SideBySide>,
    /// Wall seconds of `attnflow experiment phase-diagram` at its default size.
    pub phase_diagram_seconds: Option<f64>,
    /// What could not be measured, and why.
    pub skipped: Vec<String>,
}

/// Runs the default-size phase-diagram experiment into a folder (see [`report`]).
pub type PhaseDiagram<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// Whether the cpu backend finishes n^2 pairs in dimension d in a few seconds.
fn cpu_affordable(n: usize, d: usize) -> bool {
    (n as f64).powi(2) * d as f64 <= 3e9
}

/// Runs the report into `dir`. `quick` shrinks every size (to check the report itself on a
/// software adapter). `phase_diagram(out)` runs `attnflow experiment phase-diagram` at its
/// default size into `out` (the experiments are a crate of their own that depends on this one:
/// the caller passes them in).
pub fn report(dir: &Path, quick: bool, phase_diagram: PhaseDiagram) -> Result<Report> {
    let ctx = Arc::new(GpuContext::new()?);
    let software = ctx.is_software();
    if software && !quick {
        return Err(Error::Input(format!(
            "the best adapter here is a software one ({}): the report's sizes take hours on \
             it; pass --quick to check the report itself",
            ctx.describe()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create: {e}")))?;
    let mut skipped = Vec::new();
    let (ns, ds): (Vec<usize>, Vec<usize>) = if quick {
        (vec![1 << 10, 1 << 12], vec![3, 16])
    } else {
        (vec![1 << 14, 1 << 17, 1 << 20], vec![3, 16, 64, 128])
    };
    let config = |backend, n: usize, d, steps| BenchConfig {
        backend,
        n,
        d,
        batch: 1,
        // Three evaluations up to 2^17 tokens, one at 2^20 (each is seconds at d >= 64).
        evals: if n > 1 << 17 { 1 } else { 3 },
        steps,
        mask: Mask::Full,
    };
    let mut grid = Vec::new();
    for &d in &ds {
        for &n in &ns {
            let say = |what: &str| eprintln!("gpu-report: {what} n = {n}, d = {d}");
            say("gpu");
            let gpu = run(&config(BackendChoice::Gpu, n, d, 0), Some(ctx.clone()))?;
            let cpu = if cpu_affordable(n, d) {
                say("cpu");
                Some(run(&config(BackendChoice::Cpu, n, d, 0), None)?)
            } else {
                None
            };
            let ratio_to_cpu = cpu
                .as_ref()
                .map(|c| gpu.pairs_per_second / c.pairs_per_second);
            grid.push(GridRow {
                n,
                d,
                gpu,
                cpu,
                ratio_to_cpu,
            });
        }
    }
    let step_n = if quick { 1 << 12 } else { 1_000_000 };
    eprintln!("gpu-report: RK4 steps at n = {step_n}, d = 3");
    let step = run(
        &BenchConfig {
            evals: 1,
            steps: 2,
            ..config(BackendChoice::Gpu, step_n, 3, 2)
        },
        Some(ctx.clone()),
    )?;
    let mut sides = Vec::new();
    for (d, n) in if quick {
        vec![(3, 1 << 10), (64, 1 << 9)]
    } else {
        vec![(3, 1 << 14), (16, 1 << 14), (64, 1 << 14)]
    } {
        eprintln!("gpu-report: side by side n = {n}, d = {d}");
        sides.push(side_by_side(ctx.clone(), n, d, 3)?);
    }
    let phase_diagram_seconds = if quick {
        skipped.push("phase-diagram (quick report)".to_string());
        None
    } else {
        eprintln!("gpu-report: attnflow experiment phase-diagram");
        let start = Instant::now();
        phase_diagram(&dir.join("phase-diagram"))?;
        Some(start.elapsed().as_secs_f64())
    };
    let report = Report {
        adapter: ctx.describe(),
        software_adapter: software,
        attnflow_version: env!("CARGO_PKG_VERSION"),
        grid,
        rk4_step_n: step_n,
        rk4_step_seconds: step.seconds_per_step,
        side_by_side: sides,
        phase_diagram_seconds,
        skipped,
    };
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Input(format!("cannot serialise the report: {e}")))?;
    let path = dir.join("gpu-report.json");
    std::fs::write(&path, json).map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
    let path = dir.join("gpu-report.md");
    std::fs::write(&path, markdown(&report))
        .map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
    Ok(report)
}

/// The report as markdown tables.
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# attnflow GPU report\n\nAdapter: {}{} (attnflow {}).\n\n\
         | n | d | GPU pairs/s | GPU s/eval | cpu pairs/s | GPU / cpu |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        r.adapter,
        if r.software_adapter {
            " (a software adapter: not a GPU figure)"
        } else {
            ""
        },
        r.attnflow_version
    );
    for row in &r.grid {
        s.push_str(&format!(
            "| {} | {} | {:.3e} | {:.3e} | {} | {} |\n",
            row.n,
            row.d,
            row.gpu.pairs_per_second,
            row.gpu.seconds_per_eval,
            row.cpu
                .as_ref()
                .map_or("-".into(), |c| format!("{:.3e}", c.pairs_per_second)),
            row.ratio_to_cpu.map_or("-".into(), |x| format!("{x:.1}x")),
        ));
    }
    s.push_str(&format!(
        "\nRK4 step at n = {}, d = 3: {}.\n\n",
        r.rk4_step_n,
        r.rk4_step_seconds
            .map_or("not measured".into(), |t| format!("{t:.3} s"))
    ));
    s.push_str(
        "| d | n | attnflow pairs/s | simple kernel | attention_v1 trusted / as shipped | attnflow / simple | attnflow / v1 trusted / as shipped |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for b in &r.side_by_side {
        s.push_str(&format!(
            "| {} | {} | {:.3e} | {:.3e} | {:.3e} / {:.3e} | {:.2}x | {:.2}x / {:.2}x |\n",
            b.d,
            b.n,
            b.attnflow.pairs_per_second,
            b.simple.pairs_per_second,
            b.v1.pairs_per_second,
            b.v1_as_shipped.pairs_per_second,
            b.ratio_to_simple,
            b.ratio_to_v1,
            b.ratio_to_v1_as_shipped
        ));
    }
    s.push_str(&format!(
        "\nDefault `phase-diagram` experiment: {}.\n",
        r.phase_diagram_seconds
            .map_or("not run".into(), |t| format!("{t:.1} s wall"))
    ));
    for k in &r.skipped {
        s.push_str(&format!("\nSkipped: {k}.\n"));
    }
    s
}
