//! Real models (docs/model.md §6): a GPT-2-shaped safetensors checkpoint written here (L = 2,
//! d = 8, H = 2, vocab 16, hidden 32, random f32 values) loaded by `--qkv`/`--mlp
//! safetensors:FILE`, with the prompt's `wte` rows as initial tokens.
//! - the reference run (Euler, h = 1, one step per layer, causal mask, beta defaulting to
//!   1 / sqrt(dh), GELU defaulting for the checkpoint's perceptron) equals an independent f64
//!   transcription of GPT-2's blocks as the model maps them to 1e-12: per token
//!   a_i = sum_h sum_{j <= i} softmax_j(q_h(x_i) . k_h(x_j) / sqrt(dh)) v_h(x_j) W_O,h
//!   + gelu(x_i W_fc + b_fc) W_proj, then x_i <- normalise(x_i + P_{x_i}^perp a_i);
//! - the cpu backend (and the gpu one when there is an adapter) agrees to 1e-4 (f32);
//! - the `transformer.` prefix and f16 / bf16 tensors load to the same weights as f32 files
//!   holding the same (rounded) values;
//! - the CLI runs the checkpoint end to end, records the file's hash and the token ids in
//!   run.toml, and `--config run.toml` reproduces the run bit for bit;
//! - a missing tensor, a wrong shape, a non-finite weight and an out-of-range token id are
//!   refused with one line naming the tensor (or the id).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use attnflow::config::{self, ConfigLayer, Resolved};
use attnflow::cpu::CpuBackend;
use attnflow::gpu::GpuBackend;
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::Mask;
use attnflow::reference::ReferenceBackend;
use common::cmd::{fails, ok};
use common::*;
use safetensors::{Dtype, tensor::TensorView};

const L: usize = 2;
const D: usize = 8;
const H: usize = 2;
const DH: usize = D / H;
const VOCAB: usize = 16;
const M: usize = 4 * D;
const TOKENS: [usize; 5] = [3, 1, 4, 15, 9];

/// Deterministic entries in [-scale, scale), rounded to f32 (as a checkpoint stores them).
fn entries(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    lcg_entries(len, seed, scale)
        .into_iter()
        .map(|v| f64::from(v as f32))
        .collect()
}

/// A GPT-2-shaped checkpoint: name -> (shape, values).
type Tensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

fn gpt2() -> Tensors {
    let mut t = Tensors::new();
    let mut put = |name: String, shape: Vec<usize>, scale: f64| {
        let len = shape.iter().product();
        let seed = t.len() as u64 + 1;
        t.insert(name, (shape, entries(len, seed, scale)));
    };
    put("wte.weight".into(), vec![VOCAB, D], 1.0);
    put("wpe.weight".into(), vec![VOCAB, D], 0.1);
    put("ln_f.weight".into(), vec![D], 1.0);
    for l in 0..L {
        put(format!("h.{l}.ln_1.weight"), vec![D], 1.0);
        put(format!("h.{l}.attn.c_attn.weight"), vec![D, 3 * D], 1.2);
        put(format!("h.{l}.attn.c_attn.bias"), vec![3 * D], 0.1);
        put(format!("h.{l}.attn.c_proj.weight"), vec![D, D], 0.6);
        put(format!("h.{l}.attn.c_proj.bias"), vec![D], 0.1);
        put(format!("h.{l}.mlp.c_fc.weight"), vec![D, M], 0.8);
        put(format!("h.{l}.mlp.c_fc.bias"), vec![M], 0.3);
        put(format!("h.{l}.mlp.c_proj.weight"), vec![M, D], 0.3);
        put(format!("h.{l}.mlp.c_proj.bias"), vec![D], 0.1);
    }
    t
}

/// Writes `t` with the safetensors crate, names prefixed, values in `dtype`.
fn write(path: &Path, t: &Tensors, prefix: &str, dtype: Dtype) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t
        .iter()
        .map(|(name, (shape, v))| {
            let raw: Vec<u8> = match dtype {
                Dtype::F32 => v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
                Dtype::F16 => v
                    .iter()
                    .flat_map(|&x| half::f16::from_f64(x).to_le_bytes())
                    .collect(),
                Dtype::BF16 => v
                    .iter()
                    .flat_map(|&x| half::bf16::from_f64(x).to_le_bytes())
                    .collect(),
                _ => unreachable!(),
            };
            (format!("{prefix}{name}"), shape.clone(), raw)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, raw)| (n.clone(), TensorView::new(dtype, s.clone(), raw).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn tokens_arg() -> String {
    TOKENS.map(|t| t.to_string()).join(",")
}

fn layer(file: &Path) -> ConfigLayer {
    let st = format!("safetensors:{}", file.display());
    ConfigLayer {
        init: Some(format!("{st}:wte")),
        tokens: Some(tokens_arg()),
        qkv: Some(format!("{st}:gpt2")),
        mlp: Some(st),
        heads: Some(H),
        mask: Some(Mask::Causal),
        integrator: Some(Integrator::Euler),
        t_end: Some(L as f64),
        steps: Some(L),
        ..Default::default()
    }
}

fn run(backend: &mut dyn Backend, r: &Resolved) -> Vec<f64> {
    attnflow::run::integrate_steps(
        backend,
        &r.model,
        r.config.integrator,
        r.step_size(),
        r.config.steps,
    )
    .unwrap();
    backend.read_state().unwrap().to_f64()
}

fn gelu(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

/// y = x W for a Conv1D weight W [rows, cols], columns `cols_from..cols_from + len`.
fn conv(x: &[f64], w: &[f64], cols: usize, from: usize, len: usize) -> Vec<f64> {
    (0..len)
        .map(|o| {
            x.iter()
                .enumerate()
                .map(|(c, xc)| xc * w[c * cols + from + o])
                .sum()
        })
        .collect()
}

/// GPT-2's layer l as attnflow maps it (biases of attention and c_proj dropped, layer norms
/// replaced by the sphere), one Euler step of size 1 with the tangent projection, renormalised.
fn transcribed_layer(t: &Tensors, l: usize, x: &[f64]) -> Vec<f64> {
    let get = |n: String| &t[&n].1;
    let (qkv, proj) = (
        get(format!("h.{l}.attn.c_attn.weight")),
        get(format!("h.{l}.attn.c_proj.weight")),
    );
    let (fc, fc_b, mlp_proj) = (
        get(format!("h.{l}.mlp.c_fc.weight")),
        get(format!("h.{l}.mlp.c_fc.bias")),
        get(format!("h.{l}.mlp.c_proj.weight")),
    );
    let n = x.len() / D;
    let tok = |i: usize| &x[i * D..(i + 1) * D];
    let mut out = vec![0.0; n * D];
    for i in 0..n {
        let mut a = [0.0; D];
        for h in 0..H {
            let q = conv(tok(i), qkv, 3 * D, h * DH, DH);
            let s: Vec<f64> = (0..=i)
                .map(|j| {
                    let k = conv(tok(j), qkv, 3 * D, D + h * DH, DH);
                    q.iter().zip(&k).map(|(a, b)| a * b).sum::<f64>() / (DH as f64).sqrt()
                })
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|s| (s - mx).exp()).sum();
            // z_h = sum_j p_j v_h(x_j), then its share of c_proj: rows h dh..(h + 1) dh.
            let mut zh = [0.0; DH];
            for (j, sj) in s.iter().enumerate() {
                let v = conv(tok(j), qkv, 3 * D, 2 * D + h * DH, DH);
                let p = (sj - mx).exp() / z;
                zh.iter_mut().zip(&v).for_each(|(z, v)| *z += p * v);
            }
            for (c, ac) in a.iter_mut().enumerate() {
                *ac += (0..DH)
                    .map(|r| zh[r] * proj[(h * DH + r) * D + c])
                    .sum::<f64>();
            }
        }
        let hidden: Vec<f64> = conv(tok(i), fc, M, 0, M)
            .iter()
            .zip(fc_b)
            .map(|(z, b)| gelu(z + b))
            .collect();
        let mlp = conv(&hidden, mlp_proj, D, 0, D);
        a.iter_mut().zip(&mlp).for_each(|(a, m)| *a += m);
        let xa: f64 = a.iter().zip(tok(i)).map(|(a, x)| a * x).sum();
        let y: Vec<f64> = (0..D).map(|c| tok(i)[c] + a[c] - xa * tok(i)[c]).collect();
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        out[i * D..(i + 1) * D]
            .iter_mut()
            .zip(&y)
            .for_each(|(o, y)| *o = y / norm);
    }
    out
}

fn transcribed_run(t: &Tensors) -> (Vec<f64>, Vec<f64>) {
    let wte = &t["wte.weight"].1;
    let mut x: Vec<f64> = TOKENS
        .iter()
        .flat_map(|&id| wte[id * D..(id + 1) * D].to_vec())
        .collect();
    for tok in x.chunks_mut(D) {
        let norm = tok.iter().map(|v| v * v).sum::<f64>().sqrt();
        tok.iter_mut().for_each(|v| *v /= norm);
    }
    let x0 = x.clone();
    for l in 0..L {
        x = transcribed_layer(t, l, &x);
    }
    (x0, x)
}

#[test]
fn gpt2_checkpoint_runs_as_the_transcribed_blocks_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpt2.safetensors");
    let t = gpt2();
    write(&file, &t, "", Dtype::F32);
    let r = config::resolve(&layer(&file)).unwrap();
    assert_eq!(
        (r.shape.n, r.shape.d),
        (TOKENS.len(), D),
        "n, d from --tokens and wte"
    );
    assert_eq!(
        r.config.beta,
        vec![1.0 / (DH as f64).sqrt()],
        "default beta"
    );
    assert_eq!(r.config.activation, attnflow::model::Activation::Gelu);
    assert_eq!(r.model.per_layer.as_ref().unwrap().layers(), L);
    let x0 = r.init.generate(r.shape, r.config.geometry, 0).unwrap();
    let (want_x0, want) = transcribed_run(&t);
    assert_close(&x0, &want_x0, r.shape, 1e-15, 0.0, "wte rows");
    let got = run(
        &mut ReferenceBackend::new(&r.model, r.shape, &x0).unwrap(),
        &r,
    );
    let err = assert_close(
        &got,
        &want,
        r.shape,
        1e-12,
        0.0,
        "reference vs transcription",
    );
    eprintln!("reference vs GPT-2 transcription, L = {L}: max|err| = {err:.2e}");
    let moved = got
        .iter()
        .zip(&x0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        moved > 0.1,
        "the layers barely move the tokens: {moved:.2e}"
    );
    let cpu = run(&mut CpuBackend::new(&r.model, r.shape, &x0).unwrap(), &r);
    let err = assert_close(&cpu, &want, r.shape, 1e-4, 1e-4, "cpu vs transcription");
    eprintln!("cpu vs GPT-2 transcription: max|err| = {err:.2e}");
    if let Some(ctx) = gpu() {
        let mut g = GpuBackend::new(ctx, &r.model, r.shape, &x0).unwrap();
        let got = run(&mut g, &r);
        let err = assert_close(&got, &want, r.shape, 1e-4, 1e-4, "gpu vs transcription");
        eprintln!("gpu vs GPT-2 transcription: max|err| = {err:.2e}");
    }
}

#[test]
fn prefixes_and_half_precision_load_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    for (dtype, round) in [
        (
            Dtype::F16,
            (|x| half::f16::from_f64(x).to_f64()) as fn(f64) -> f64,
        ),
        (Dtype::BF16, |x| half::bf16::from_f64(x).to_f64()),
    ] {
        let mut t = gpt2();
        t.values_mut()
            .for_each(|(_, v)| v.iter_mut().for_each(|x| *x = round(*x)));
        let (plain, half) = (dir.path().join("a.st"), dir.path().join("b.st"));
        write(&plain, &t, "", Dtype::F32);
        write(&half, &t, "transformer.", dtype);
        let (a, b) = (
            config::resolve(&layer(&plain)).unwrap(),
            config::resolve(&layer(&half)).unwrap(),
        );
        assert_eq!(a.model.per_layer, b.model.per_layer, "{dtype:?}");
        assert_eq!(
            a.init.generate(a.shape, a.config.geometry, 0).unwrap(),
            b.init.generate(b.shape, b.config.geometry, 0).unwrap(),
            "{dtype:?}"
        );
    }
}

#[test]
fn cli_runs_a_checkpoint_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("gpt2.safetensors"),
        &gpt2(),
        "",
        Dtype::F32,
    );
    let args = [
        "run",
        "--init",
        "safetensors:gpt2.safetensors:wte",
        "--tokens",
        &tokens_arg(),
        "--qkv",
        "safetensors:gpt2.safetensors:gpt2",
        "--mlp",
        "safetensors:gpt2.safetensors",
        "--heads",
        "2",
        "--mask",
        "causal",
        "--integrator",
        "euler",
        "--t-end",
        "2",
        "--steps",
        "2",
        "--backend",
        "reference",
        "--quiet",
        "--out",
        "a",
    ];
    ok(&args, dir.path());
    let toml = std::fs::read_to_string(dir.path().join("a/run.toml")).unwrap();
    assert!(toml.contains("tokens = \"3,1,4,15,9\""), "{toml}");
    assert!(toml.contains("gpt2.safetensors\" = \""), "{toml}");
    ok(
        &["run", "--config", "a/run.toml", "--quiet", "--out", "b"],
        dir.path(),
    );
    let read = |p: &str| std::fs::read(dir.path().join(p).join("final.npy")).unwrap();
    assert_eq!(read("a"), read("b"), "the replay reproduces the run");
    let (shape, x) = attnflow::npy::read_as::<f64>(&dir.path().join("a/final.npy")).unwrap();
    assert_eq!(shape, [TOKENS.len() as u64, D as u64]);
    let (_, want) = transcribed_run(&gpt2());
    let err = x
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-12, "CLI run vs transcription: {err:.2e}");
}

#[test]
fn bad_checkpoints_and_token_ids_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = |file: &str, tokens: &str| -> String {
        let st = format!("safetensors:{file}");
        fails(
            &[
                "run",
                "--init",
                &format!("{st}:wte"),
                "--tokens",
                tokens,
                "--qkv",
                &st,
                "--mlp",
                &st,
                "--heads",
                "2",
                "--steps",
                "2",
                "--out",
                "x",
            ],
            dir.path(),
        )
    };
    let mut missing = gpt2();
    missing.remove("h.1.mlp.c_proj.weight");
    write(&dir.path().join("missing.st"), &missing, "", Dtype::F32);
    let e = run("missing.st", "1,2");
    assert!(
        e.contains("tensor 'h.1.mlp.c_proj.weight' is missing"),
        "{e}"
    );
    let mut shape = gpt2();
    shape.insert(
        "h.0.attn.c_attn.weight".into(),
        (vec![D, 2 * D], entries(2 * D * D, 7, 1.0)),
    );
    write(&dir.path().join("shape.st"), &shape, "", Dtype::F32);
    let e = run("shape.st", "1,2");
    assert!(
        e.contains("tensor 'h.0.attn.c_attn.weight' has shape [8, 16], expected [8, 24]"),
        "{e}"
    );
    let mut nan = gpt2();
    nan.get_mut("h.1.attn.c_proj.weight").unwrap().1[5] = f64::NAN;
    write(&dir.path().join("nan.st"), &nan, "", Dtype::F32);
    let e = run("nan.st", "1,2");
    assert!(
        e.contains("tensor 'h.1.attn.c_proj.weight': element 5 is NaN"),
        "{e}"
    );
    // Was: a stray h.5 tensor beside layers 0-1 ran as 2 layers, the tensor dropped.
    let mut stray = gpt2();
    stray.insert(
        "h.5.attn.c_attn.weight".into(),
        (vec![D, 3 * D], entries(3 * D * D, 9, 1.0)),
    );
    write(&dir.path().join("stray.st"), &stray, "", Dtype::F32);
    let e = run("stray.st", "1,2");
    assert!(
        e.contains("tensor 'h.5.attn.c_attn.weight' belongs to layer 5")
            && e.contains("h.2.attn.c_attn.weight is missing"),
        "{e}"
    );
    write(&dir.path().join("ok.st"), &gpt2(), "", Dtype::F32);
    // Was: "ok.st:llama: cannot open" (the format read as part of the file name).
    for flag in ["--qkv", "--mlp"] {
        let e = fails(
            &[
                "run",
                flag,
                "safetensors:ok.st:llama",
                "--heads",
                "2",
                "--steps",
                "1",
                "--out",
                "x",
            ],
            dir.path(),
        );
        assert!(
            e.contains("unknown format 'llama'") && e.contains("safetensors:ok.st:gpt2"),
            "{e}"
        );
    }
    let e = run("ok.st", "1,16,2");
    assert!(
        e.contains("token id 16 is out of range for tensor 'wte.weight' (vocab 16"),
        "{e}"
    );
    let e = run("ok.st", "1,x");
    assert!(e.contains("--tokens takes token ids"), "{e}");
    let e = fails(
        &["run", "--tokens", "1,2", "--steps", "1", "--out", "y"],
        dir.path(),
    );
    assert!(e.contains("--tokens names rows of an embedding"), "{e}");
}
