//! `attnflow bench`.

use anyhow::{Result, bail};
use clap::Args;

use attnflow::bench::{self, BenchConfig, BenchReport};
use attnflow::config::BackendChoice;
use attnflow::model::Mask;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Tokens per system; several separated by commas give one row each and the fitted
    /// exponent of the cost in n (2 expected).
    #[arg(long, default_value = "8192")]
    n: String,
    /// Token dimension.
    #[arg(long, default_value_t = 3)]
    d: usize,
    #[command(flatten)]
    backend: attnflow::options::BackendOpt,
    /// Independent systems per evaluation.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed evaluations after a warm-up.
    #[arg(long, default_value_t = 5)]
    evals: usize,
    /// Timed RK4 steps after a warm-up [default: as many as --evals].
    #[arg(long)]
    steps: Option<usize>,
    /// Mask: full or causal (causal does half the pairs).
    #[arg(long, default_value = "full", value_parser = ["full", "causal"])]
    mask: String,
    /// Also measure this backend in the same process and print the ratio to it.
    #[arg(long, value_parser = ["gpu", "cpu", "reference"])]
    vs: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Measure the GPU evaluation side by side with two baseline kernels (the simplest
    /// online-softmax kernel and attnflow's kernel before the generated ones) on the same
    /// adapter and tokens, and print the ratios (SA, full mask, batch 1).
    #[arg(long)]
    baselines: bool,
    /// Write the GPU report (scripts/gpu-report) into this folder, each row as soon as it is
    /// measured (gpu-report.jsonl and gpu-report.md): the headline (d = 3 and 64 at 2^20
    /// tokens, the RK4 step at 10^6), a grid of sizes with the cpu backend beside it, the
    /// baselines, the default phase-diagram experiment.
    #[arg(long, value_name = "DIR")]
    report: Option<std::path::PathBuf>,
    /// With --report: small sizes only (checks the report itself).
    #[arg(long, requires = "report")]
    quick: bool,
    /// With --report: which rows (headline and all begin a report; grid and phase-diagram
    /// continue the one in the folder).
    #[arg(long, requires = "report", default_value = "all",
          value_parser = ["headline", "grid", "phase-diagram", "all"])]
    part: String,
    /// With --report: start no row whose estimated time would end past this many seconds;
    /// skipped rows are listed in the report.
    #[arg(long, requires = "report", value_name = "SECONDS")]
    time_limit: Option<f64>,
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

fn row(r: &BenchReport) -> String {
    format!(
        "{:<10} {:>9} {:>5} {:>6} {:>12.3e} {:>11.3e} [{:.2e}, {:.2e}] {:>11} {:>12} {:>9} {:>9}",
        r.backend,
        r.n,
        r.d,
        r.batch,
        r.pairs_per_second,
        r.seconds_per_eval,
        r.eval_seconds.q1,
        r.eval_seconds.q3,
        r.seconds_per_step
            .map_or("-".into(), |s| format!("{s:.3e}")),
        r.gpu_pairs_per_second
            .map_or("-".into(), |p| format!("{p:.3e}")),
        mib(r.peak_host_bytes),
        mib(r.device_bytes),
    )
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let ns: Vec<usize> = args
        .n
        .split(',')
        .map(|v| v.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            anyhow::anyhow!(
                "--n takes whole numbers separated by commas, got '{}'",
                args.n
            )
        })?;
    if ns.contains(&0) {
        bail!("n must be at least 1");
    }
    #[cfg(not(feature = "gpu"))]
    if args.report.is_some() || args.baselines {
        bail!(
            "--report and --baselines measure GPU kernels: this attnflow was built without the gpu feature"
        );
    }
    #[cfg(feature = "gpu")]
    if let Some(dir) = &args.report {
        let time_limit = match args.time_limit {
            Some(t) if !(t.is_finite() && t > 0.0) => {
                bail!("--time-limit takes a positive number of seconds, got {t}")
            }
            t => t.map(std::time::Duration::from_secs_f64),
        };
        let options = bench::report::ReportOptions {
            quick: args.quick,
            part: args.part.parse()?,
            time_limit,
        };
        // What this part adds to the markdown (earlier parts printed theirs).
        let md = dir.join(bench::report::MARKDOWN);
        let before = std::fs::metadata(&md).map_or(0, |m| m.len() as usize);
        let phase_diagram = |out: &std::path::Path| -> attnflow::Result<()> {
            let setup = attnflow_experiments::Setup {
                force: true,
                progress: true,
                command: "attnflow bench (gpu report)".into(),
                ..attnflow_experiments::Setup::new(out)
            };
            attnflow_experiments::run("phase-diagram", &setup).map(|_| ())
        };
        bench::report::report(dir, options, &phase_diagram)?;
        let text = std::fs::read_to_string(&md)?;
        out!("{}", text.get(before..).unwrap_or(&text));
        outln!(
            "wrote {} and {}",
            md.display(),
            dir.join(bench::report::JSONL).display()
        );
        return Ok(());
    }
    #[cfg(feature = "gpu")]
    if args.baselines {
        return baselines(&args, &ns);
    }
    let mask = if args.mask == "causal" {
        Mask::Causal
    } else {
        Mask::Full
    };
    // One GPU context for every measurement; `auto` means what it means for every command.
    let picked = attnflow::backend::select(args.backend.choice)?;
    let note = picked.note.clone();
    let backend = picked.kind;
    let vs = args
        .vs
        .as_deref()
        .map(|v| attnflow::backend::select_sharing(v.parse()?, picked.gpu.clone()))
        .transpose()?;
    let ctx = picked
        .gpu
        .clone()
        .or_else(|| vs.as_ref().and_then(|v| v.gpu.clone()));
    let config = |n: usize, backend: BackendChoice| BenchConfig {
        backend,
        n,
        d: args.d,
        batch: args.batch,
        evals: args.evals,
        steps: args.steps.unwrap_or(args.evals),
        mask,
    };
    let mut reports = Vec::new();
    let mut baselines = Vec::new();
    for &n in &ns {
        reports.push(bench::run(&config(n, backend), ctx.clone())?);
        if let Some(vs) = &vs {
            baselines.push(bench::run(&config(n, vs.kind), ctx.clone())?);
        }
    }
    let ratios: Vec<f64> = reports
        .iter()
        .zip(&baselines)
        .map(|(r, b)| r.pairs_per_second / b.pairs_per_second)
        .collect();
    let exponent = (ns.len() > 1).then(|| {
        let secs: Vec<f64> = reports.iter().map(|r| r.seconds_per_eval).collect();
        bench::fitted_exponent(&ns, &secs)
    });
    if args.json {
        let with_baseline = |r: &BenchReport, i: usize| {
            let mut v = serde_json::to_value(r).expect("serialisable");
            if let Some(b) = baselines.get(i) {
                v["baseline"] = serde_json::to_value(b).expect("serialisable");
                v["ratio_to_baseline"] = ratios[i].into();
            }
            v
        };
        let out = if reports.len() == 1 {
            with_baseline(&reports[0], 0)
        } else {
            serde_json::json!({
                "runs": reports.iter().enumerate().map(|(i, r)| with_baseline(r, i)).collect::<Vec<_>>(),
                "fitted_exponent": exponent,
            })
        };
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(note) = note {
        outln!("note: {note}");
    }
    outln!(
        "attnflow bench: SA, sphere, {} mask, Q = K = V = I, beta = 1; median of {} evaluations and {} RK4 steps after a warm-up",
        args.mask,
        args.evals,
        args.steps.unwrap_or(args.evals)
    );
    for r in reports.iter().chain(&baselines) {
        outln!("{:<10} {}", r.backend, r.adapter);
    }
    outln!(
        "{:<10} {:>9} {:>5} {:>6} {:>12} {:>11} {:<20} {:>11} {:>12} {:>9} {:>9}",
        "backend",
        "n",
        "d",
        "batch",
        "pairs/s",
        "s/eval",
        "[q1, q3]",
        "s/RK4 step",
        "GPU pairs/s",
        "host MiB",
        "dev MiB"
    );
    for (i, r) in reports.iter().enumerate() {
        outln!("{}", row(r));
        if let Some(b) = baselines.get(i) {
            outln!("{}", row(b));
            outln!("ratio {} / {}: {:.2}x", r.backend, b.backend, ratios[i]);
        }
    }
    if let Some(e) = exponent {
        outln!("fitted exponent of seconds per evaluation in n: {e:.3} (2 expected)");
    }
    Ok(())
}

#[cfg(feature = "gpu")]
fn baselines(args: &BenchArgs, ns: &[usize]) -> Result<()> {
    if args.evals == 0 {
        bail!("--evals must be at least 1");
    }
    let ctx = std::sync::Arc::new(attnflow::gpu::GpuContext::new()?);
    let mut runs = Vec::new();
    if !args.json {
        outln!("side by side on {}", ctx.describe());
        outln!(
            "{:>4} {:>8}  {:<28} {:>12} {:>11} {:>10}",
            "d",
            "n",
            "kernel",
            "pairs/s",
            "s/eval",
            "rel. diff"
        );
    }
    for &n in ns {
        let r = bench::baselines::side_by_side(ctx.clone(), n, args.d, args.evals)?;
        if !args.json {
            for k in r.kernels() {
                outln!(
                    "{:>4} {:>8}  {:<28} {:>12.3e} {:>11.3e} {:>10.1e}",
                    r.d,
                    r.n,
                    k.kernel,
                    k.pairs_per_second,
                    k.seconds.median,
                    k.relative_difference
                );
            }
            outln!(
                "ratio attnflow / simple {:.2}x, / attention_v1 {:.2}x, / as shipped {:.2}x",
                r.ratio_to_simple,
                r.ratio_to_v1,
                r.ratio_to_v1_as_shipped
            );
        }
        runs.push(r);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&runs)?);
    }
    Ok(())
}
