//! The GPU report behind `scripts/gpu-report` (`attnflow bench --report DIR`): on the machine's
//! best adapter, pairs per second of one attention evaluation, seconds per RK4 step at
//! n = 10^6 (d = 3), the cpu backend beside it (at the sizes it finishes in seconds), the
//! side-by-side ratios to the baseline kernels and the wall time of the default
//! `phase-diagram` experiment: only what was measured here.
//!
//! Every row is written as soon as it is measured, so that a run cut short keeps every
//! finished row: one JSON object per line in DIR/gpu-report.jsonl and a markdown table row in
//! DIR/gpu-report.md, each file extended atomically (the whole file rewritten beside it,
//! synced and renamed over it). The headline rows come first (d = 3 and d = 64 at n = 2^20,
//! then the RK4 step); scripts/gpu-report runs PyTorch's side of the headline between the
//! `headline` and `grid` parts. A time limit stops the report starting a row that its
//! estimate says cannot finish in time, and records it as skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::baselines::{SideBySide, side_by_side};
use super::{BenchConfig, BenchReport, run};
use crate::config::BackendChoice;
use crate::error::{Error, Result, file_error};
use crate::gpu::GpuContext;
use crate::model::Mask;

/// The JSON lines file and the markdown file of a report folder.
pub const JSONL: &str = "gpu-report.jsonl";
pub const MARKDOWN: &str = "gpu-report.md";

/// Which rows to measure: scripts/gpu-report runs the parts one by one with PyTorch's
/// headline in between; `All` runs them in this order in one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Pairs/s at d = 3 and d = 64 at n = 2^20, and the RK4 step at n = 10^6, d = 3.
    Headline,
    /// The rest of the grid (n = 2^14, 2^17, 2^20; d = 3, 16, 64, 128) with the cpu backend
    /// beside it, then the baseline kernels side by side.
    Grid,
    /// The wall time of the default `phase-diagram` experiment.
    PhaseDiagram,
    All,
}

impl std::str::FromStr for Part {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "headline" => Part::Headline,
            "grid" => Part::Grid,
            "phase-diagram" => Part::PhaseDiagram,
            "all" => Part::All,
            _ => {
                return Err(Error::Input(format!(
                    "unknown report part '{s}': one of headline, grid, phase-diagram, all"
                )));
            }
        })
    }
}

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

/// What to measure and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    /// Small sizes only (to check the report itself on a software adapter).
    pub quick: bool,
    pub part: Part,
    /// Start no row whose estimated time goes past this much time from the start.
    pub time_limit: Option<Duration>,
}

/// Whether the cpu backend finishes n^2 pairs in dimension d in a few seconds.
fn cpu_affordable(n: usize, d: usize) -> bool {
    (n as f64).powi(2) * d as f64 <= 3e9
}

/// The sizes of each part.
struct Sizes {
    /// (d, n) of the headline evaluations.
    headline: Vec<(usize, usize)>,
    /// Tokens of the RK4 step (d = 3).
    step_n: usize,
    ns: Vec<usize>,
    ds: Vec<usize>,
    /// (d, n) of the side-by-side comparisons.
    sides: Vec<(usize, usize)>,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                headline: vec![(3, 1 << 12), (64, 1 << 10)],
                step_n: 1 << 12,
                ns: vec![1 << 10, 1 << 12],
                ds: vec![3, 16],
                // One row checks the code; at d = 64 the five kernels' first compilation
                // alone took 169 s of llvmpipe on the loaded CI machine.
                sides: vec![(3, 1 << 10)],
            }
        } else {
            Sizes {
                headline: vec![(3, 1 << 20), (64, 1 << 20)],
                step_n: 1_000_000,
                ns: vec![1 << 14, 1 << 17, 1 << 20],
                ds: vec![3, 16, 64, 128],
                sides: vec![(3, 1 << 14), (16, 1 << 14), (64, 1 << 14)],
            }
        }
    }
}

/// Evaluations timed at n (three up to 2^17 tokens, one above: seconds each at d >= 64).
fn evals(n: usize) -> usize {
    if n > 1 << 17 { 1 } else { 3 }
}

/// The clock of a report: when it must stop starting rows, and the speeds measured so far
/// (pairs per second by backend and d) from which a row's time is estimated.
struct Clock {
    start: Instant,
    limit: Option<Duration>,
    speeds: BTreeMap<(&'static str, usize), f64>,
}

impl Clock {
    fn new(limit: Option<Duration>) -> Self {
        Clock {
            start: Instant::now(),
            limit,
            speeds: BTreeMap::new(),
        }
    }

    /// Estimated seconds of `pairs` pair interactions in dimension d on `backend`: at the
    /// speed measured at the same d, else at the nearest smaller d scaled by d'/d (the
    /// cost of a pair grows about linearly in d), else at the nearest larger d; None before
    /// any measurement on that backend.
    fn estimate(&self, backend: &'static str, d: usize, pairs: f64) -> Option<f64> {
        let on: Vec<(usize, f64)> = self
            .speeds
            .iter()
            .filter(|((b, _), _)| *b == backend)
            .map(|((_, d), s)| (*d, *s))
            .collect();
        let speed = on
            .iter()
            .rev()
            .find(|(e, _)| *e <= d)
            .map(|&(e, s)| s * e as f64 / d as f64)
            .or_else(|| on.iter().find(|(e, _)| *e > d).map(|&(_, s)| s))?;
        Some(pairs / speed)
    }

    fn measured(&mut self, r: &BenchReport) {
        self.speeds.insert((r.backend, r.d), r.pairs_per_second);
    }

    /// Whether a row estimated at `seconds` (None: unknown) may start: within the limit, or
    /// with no limit. A row of unknown cost starts while any time is left.
    fn fits(&self, seconds: Option<f64>) -> bool {
        match self.limit {
            None => true,
            Some(limit) => {
                let left = limit.as_secs_f64() - self.start.elapsed().as_secs_f64();
                left > 0.0 && seconds.is_none_or(|s| s <= left)
            }
        }
    }

    /// Estimated seconds of a measurement by `run` (a warm-up evaluation, the timed ones,
    /// and 4 evaluations per step with a warm-up step).
    fn bench_estimate(&self, config: &BenchConfig, backend: &'static str) -> Option<f64> {
        let pairs = (config.n as f64).powi(2) * config.batch as f64;
        let steps = if config.steps > 0 {
            config.steps + 1
        } else {
            0
        };
        let evaluations = 1 + config.evals + 4 * steps;
        self.estimate(backend, config.d, pairs * evaluations as f64)
    }
}

/// The two files of a report folder, each extended atomically row by row.
struct Writer {
    jsonl: PathBuf,
    md: PathBuf,
    /// The markdown table last opened by this process.
    table: Option<&'static str>,
}

/// Appends `text` to `path` atomically: a reader (or a run killed meanwhile) sees the file
/// before or after, never half a row.
fn extend(path: &Path, text: &str) -> Result<()> {
    let mut all = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(file_error(path, format!("cannot read: {e}"))),
    };
    all.extend_from_slice(text.as_bytes());
    crate::output::write_atomic(path, |tmp| {
        std::fs::write(tmp, &all).map_err(|e| file_error(tmp, format!("cannot write: {e}")))
    })
}

impl Writer {
    fn new(dir: &Path) -> Self {
        Writer {
            jsonl: dir.join(JSONL),
            md: dir.join(MARKDOWN),
            table: None,
        }
    }

    fn line(&self, value: serde_json::Value) -> Result<()> {
        let mut line = serde_json::to_string(&value)
            .map_err(|e| Error::Input(format!("cannot serialise a report row: {e}")))?;
        line.push('\n');
        extend(&self.jsonl, &line)
    }

    /// A markdown row of table `table` (whose heading is written first when this process
    /// has not opened it yet) and its JSON line.
    fn row(&mut self, table: &'static str, md: String, value: serde_json::Value) -> Result<()> {
        let mut text = String::new();
        if self.table != Some(table) {
            text.push('\n');
            text.push_str(&heading(table));
            self.table = Some(table);
        }
        text.push_str(&md);
        text.push('\n');
        self.line(value)?;
        extend(&self.md, &text)
    }

    /// A sentence after the tables (skipped rows, the phase diagram).
    fn note(&mut self, md: String, value: serde_json::Value) -> Result<()> {
        self.table = None;
        self.line(value)?;
        extend(&self.md, &format!("\n{md}\n"))
    }

    fn skipped(&mut self, what: String, why: &str) -> Result<()> {
        eprintln!("gpu-report: skipped {what}: {why}");
        self.note(
            format!("Skipped: {what} ({why})."),
            json!({"row": "skipped", "what": what, "why": why}),
        )
    }
}

/// The tables (and the "row" of their JSON lines; the grid's rows are "eval" too).
const EVAL: &str = "eval";
const GRID: &str = "grid";
const STEP: &str = "rk4";
const SIDE: &str = "side_by_side";

const EVAL_COLUMNS: &str = "| n | d | GPU pairs/s | GPU s/eval | GPU pairs/s (timestamps) | cpu pairs/s | GPU / cpu |\n\
                            | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";

/// The heading of a markdown table.
fn heading(table: &str) -> String {
    match table {
        EVAL => format!(
            "Headline: one attention evaluation (SA, full mask, Q = K = V = I, beta = 1; host \
             clock, median):\n\n{EVAL_COLUMNS}"
        ),
        GRID => format!("The grid, one attention evaluation as above:\n\n{EVAL_COLUMNS}"),
        STEP => "RK4 step (4 evaluations, stage combinations, renormalisation; median):\n\n\
                 | n | d | s/step | pairs/s |\n\
                 | ---: | ---: | ---: | ---: |\n"
            .into(),
        _ => "Side by side on the same adapter and tokens:\n\n\
              | d | n | attnflow pairs/s | simple kernel | attention_v1 trusted / as shipped | attnflow / simple | attnflow / v1 trusted / as shipped |\n\
              | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            .into(),
    }
}

fn sci(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3e}"))
}

fn eval_md(row: &GridRow) -> String {
    format!(
        "| {} | {} | {:.3e} | {:.3e} | {} | {} | {} |",
        row.n,
        row.d,
        row.gpu.pairs_per_second,
        row.gpu.seconds_per_eval,
        sci(row.gpu.gpu_pairs_per_second),
        sci(row.cpu.as_ref().map(|c| c.pairs_per_second)),
        row.ratio_to_cpu.map_or("-".into(), |x| format!("{x:.1}x")),
    )
}

fn side_md(b: &SideBySide) -> String {
    format!(
        "| {} | {} | {:.3e} | {:.3e} | {:.3e} / {:.3e} | {:.2}x | {:.2}x / {:.2}x |",
        b.d,
        b.n,
        b.attnflow.pairs_per_second,
        b.simple.pairs_per_second,
        b.v1.pairs_per_second,
        b.v1_as_shipped.pairs_per_second,
        b.ratio_to_simple,
        b.ratio_to_v1,
        b.ratio_to_v1_as_shipped
    )
}

fn value(v: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Input(format!("cannot serialise a report row: {e}")))
}

/// Runs the default-size phase-diagram experiment into a folder (the experiments are a crate
/// of their own that depends on this one: the caller passes them in).
pub type PhaseDiagram<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// Runs the report's `options.part` into `dir`, writing each row as it is measured;
/// `phase_diagram(out)` runs `attnflow experiment phase-diagram` at its default size. The
/// `headline` and `all` parts begin a report and refuse a folder that holds one; the other
/// parts continue the report in `dir` (or begin one).
pub fn report(dir: &Path, options: ReportOptions, phase_diagram: PhaseDiagram) -> Result<()> {
    let clock = Clock::new(options.time_limit);
    let ctx = Arc::new(GpuContext::new()?);
    let software = ctx.is_software();
    let quick = options.quick;
    if software && !quick {
        return Err(Error::Input(format!(
            "the best adapter here is a software one ({}): the report's sizes take hours on \
             it; pass --quick to check the report itself",
            ctx.describe()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create: {e}")))?;
    let lock = crate::output::lock_folder(dir)?;
    let w = Writer::new(dir);
    let begins = matches!(options.part, Part::Headline | Part::All);
    if begins && (w.jsonl.exists() || w.md.exists()) {
        return Err(file_error(
            dir,
            "already holds a GPU report: choose another folder (the report never overwrites one)",
        ));
    }
    if !w.jsonl.exists() {
        let adapter = ctx.describe();
        w.line(json!({
            "row": "header",
            "adapter": adapter,
            "software_adapter": software,
            "attnflow_version": env!("CARGO_PKG_VERSION"),
            "quick": quick,
        }))?;
        extend(
            &w.md,
            &format!(
                "# attnflow GPU report\n\nAdapter: {adapter}{} (attnflow {}{}).\n",
                if software {
                    " (a software adapter: not a GPU figure)"
                } else {
                    ""
                },
                env!("CARGO_PKG_VERSION"),
                if quick { ", quick sizes" } else { "" }
            ),
        )?;
    }
    let mut r = Run {
        ctx,
        sizes: Sizes::new(quick),
        clock,
        w,
        quick,
        dir: dir.to_path_buf(),
        phase: phase_diagram,
    };
    let parts: &[Part] = match options.part {
        Part::All => &[Part::Headline, Part::Grid, Part::PhaseDiagram],
        Part::Headline => &[Part::Headline],
        Part::Grid => &[Part::Grid],
        Part::PhaseDiagram => &[Part::PhaseDiagram],
    };
    for part in parts {
        match part {
            Part::Headline => r.headline()?,
            Part::Grid => r.grid()?,
            _ => r.phase_diagram()?,
        }
    }
    // Done: the lock file goes (a failed part leaves it, naming the process that held it).
    let _ = std::fs::remove_file(dir.join(crate::output::LOCK));
    drop(lock);
    Ok(())
}

struct Run<'a> {
    ctx: Arc<GpuContext>,
    sizes: Sizes,
    clock: Clock,
    w: Writer,
    quick: bool,
    dir: PathBuf,
    phase: PhaseDiagram<'a>,
}

impl Run<'_> {
    fn config(backend: BackendChoice, n: usize, d: usize) -> BenchConfig {
        BenchConfig {
            backend,
            n,
            d,
            batch: 1,
            evals: evals(n),
            steps: 0,
            mask: Mask::Full,
        }
    }

    /// One row of the evaluation table: the GPU, and the cpu backend beside it where it is
    /// affordable and fits the time left.
    fn eval_row(&mut self, table: &'static str, n: usize, d: usize) -> Result<()> {
        let gpu_config = Self::config(BackendChoice::Gpu, n, d);
        if !self
            .clock
            .fits(self.clock.bench_estimate(&gpu_config, "gpu"))
        {
            return self
                .w
                .skipped(format!("GPU evaluation n = {n}, d = {d}"), "time limit");
        }
        eprintln!("gpu-report: gpu n = {n}, d = {d}");
        let gpu = run(&gpu_config, Some(self.ctx.clone()))?;
        self.clock.measured(&gpu);
        let cpu_config = Self::config(BackendChoice::Cpu, n, d);
        let cpu = if cpu_affordable(n, d)
            && self
                .clock
                .fits(self.clock.bench_estimate(&cpu_config, "cpu"))
        {
            eprintln!("gpu-report: cpu n = {n}, d = {d}");
            let c = run(&cpu_config, None)?;
            self.clock.measured(&c);
            Some(c)
        } else {
            None
        };
        let ratio_to_cpu = cpu
            .as_ref()
            .map(|c| gpu.pairs_per_second / c.pairs_per_second);
        let row = GridRow {
            n,
            d,
            gpu,
            cpu,
            ratio_to_cpu,
        };
        eprintln!(
            "gpu-report: n = {n}, d = {d}: {:.3e} pairs/s",
            row.gpu.pairs_per_second
        );
        let mut v = value(&row)?;
        v["row"] = EVAL.into();
        self.w.row(table, eval_md(&row), v)
    }

    fn headline(&mut self) -> Result<()> {
        for (d, n) in self.sizes.headline.clone() {
            self.eval_row(EVAL, n, d)?;
        }
        let n = self.sizes.step_n;
        let config = BenchConfig {
            evals: 1,
            steps: 2,
            ..Self::config(BackendChoice::Gpu, n, 3)
        };
        if !self.clock.fits(self.clock.bench_estimate(&config, "gpu")) {
            return self
                .w
                .skipped(format!("RK4 step n = {n}, d = 3"), "time limit");
        }
        eprintln!("gpu-report: RK4 steps at n = {n}, d = 3");
        let step = run(&config, Some(self.ctx.clone()))?;
        self.clock.measured(&step);
        let seconds = step.seconds_per_step.expect("steps were timed");
        eprintln!("gpu-report: RK4 step n = {n}, d = 3: {seconds:.3} s");
        self.w.row(
            STEP,
            format!(
                "| {n} | 3 | {seconds:.3} | {} |",
                sci(step.step_pairs_per_second)
            ),
            json!({"row": STEP, "n": n, "d": 3, "seconds_per_step": seconds, "report": value(&step)?}),
        )
    }

    fn grid(&mut self) -> Result<()> {
        for d in self.sizes.ds.clone() {
            for n in self.sizes.ns.clone() {
                if !self.sizes.headline.contains(&(d, n)) {
                    self.eval_row(GRID, n, d)?;
                }
            }
        }
        for (d, n) in self.sizes.sides.clone() {
            // Five kernels, a warm-up and three evaluations each.
            let estimate = self
                .clock
                .estimate("gpu", d, 5.0 * 4.0 * (n as f64).powi(2))
                .map(|s| 4.0 * s);
            if !self.clock.fits(estimate) {
                self.w
                    .skipped(format!("side by side n = {n}, d = {d}"), "time limit")?;
                continue;
            }
            eprintln!("gpu-report: side by side n = {n}, d = {d}");
            let b = side_by_side(self.ctx.clone(), n, d, 3)?;
            let mut v = value(&b)?;
            v["row"] = SIDE.into();
            self.w.row(SIDE, side_md(&b), v)?;
        }
        Ok(())
    }

    fn phase_diagram(&mut self) -> Result<()> {
        if self.quick {
            return self.w.skipped("phase-diagram".into(), "quick report");
        }
        // Its time is unknown until run: it starts only with a minute left.
        if !self.clock.fits(Some(60.0)) {
            return self.w.skipped("phase-diagram".into(), "time limit");
        }
        eprintln!("gpu-report: attnflow experiment phase-diagram");
        let start = Instant::now();
        (self.phase)(&self.dir.join("phase-diagram"))?;
        let seconds = start.elapsed().as_secs_f64();
        self.w.note(
            format!("Default `phase-diagram` experiment: {seconds:.1} s wall."),
            json!({"row": "phase_diagram", "seconds": seconds}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(backend: &'static str, d: usize, pairs_per_second: f64) -> BenchReport {
        let stats = super::super::Stats::of(&[1.0]);
        BenchReport {
            backend,
            adapter: String::new(),
            n: 1,
            d,
            batch: 1,
            evals: 1,
            pairs_per_eval: 1.0,
            pairs_per_second,
            seconds_per_eval: 1.0,
            eval_seconds: stats,
            seconds_per_step: None,
            step_seconds: None,
            step_pairs_per_second: None,
            gpu_seconds_per_eval: None,
            gpu_pairs_per_second: None,
            chunk_keys: None,
            peak_host_bytes: None,
            device_bytes: None,
        }
    }

    #[test]
    fn estimates_scale_from_the_nearest_measured_d() {
        let mut c = Clock::new(Some(Duration::from_secs(100)));
        assert_eq!(c.estimate("gpu", 3, 1e12), None);
        c.measured(&report("gpu", 3, 1e12));
        c.measured(&report("gpu", 64, 1e11));
        // The same d; a larger d from the nearest smaller (1e11 * 64/128); a smaller d
        // from the nearest larger; another backend is unknown.
        assert_eq!(c.estimate("gpu", 3, 2e12), Some(2.0));
        assert_eq!(c.estimate("gpu", 128, 1e11), Some(2.0));
        let e = c.estimate("gpu", 16, 1e12 * 3.0 / 16.0).unwrap();
        assert!((e - 1.0).abs() < 1e-12, "{e}");
        assert_eq!(c.estimate("gpu", 2, 1e12), Some(1.0));
        assert_eq!(c.estimate("cpu", 3, 1.0), None);
        // A row fits while its estimate is within the time left; unknown rows start.
        assert!(c.fits(Some(90.0)));
        assert!(!c.fits(Some(101.0)));
        assert!(c.fits(None));
        let gone = Clock {
            start: Instant::now() - Duration::from_secs(101),
            ..Clock::new(Some(Duration::from_secs(100)))
        };
        assert!(!gone.fits(None));
        assert!(Clock::new(None).fits(Some(1e9)));
    }

    #[test]
    fn rows_extend_both_files_and_each_table_is_headed_once() {
        let dir = std::env::temp_dir().join(format!("attnflow-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Writer::new(&dir);
        w.row(EVAL, "| a |".into(), json!({"row": EVAL, "i": 1}))
            .unwrap();
        w.row(EVAL, "| b |".into(), json!({"row": EVAL, "i": 2}))
            .unwrap();
        w.skipped("x".into(), "time limit").unwrap();
        w.row(EVAL, "| c |".into(), json!({"row": EVAL, "i": 3}))
            .unwrap();
        let md = std::fs::read_to_string(dir.join(MARKDOWN)).unwrap();
        assert_eq!(md.matches("| n | d | GPU pairs/s").count(), 2, "{md}");
        assert!(md.contains("| a |\n| b |\n"), "{md}");
        assert!(md.contains("Skipped: x (time limit)."), "{md}");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join(JSONL))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["row"], "skipped");
        assert_eq!(lines[3]["i"], 3);
        // No temporary file is left beside them.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
