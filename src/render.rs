//! Pictures of token configurations: orthographic views of the sphere (d = 3), the circle
//! (d = 2), or the first three principal directions (d > 3), as PNG through plotters.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// Registers the embedded DejaVu Sans as "sans-serif" (plotters' pure-Rust text path needs
/// its fonts given to it; no system fonts are looked up).
pub fn register_fonts() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "invalid font")
            .expect("the embedded font parses");
    });
}

fn draw_err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| crate::error::file_error(path, format!("cannot draw: {e:?}"))
}

/// Coordinates in at most 3 dimensions for every panel, in one common basis: the tokens
/// themselves for d <= 3, else the first three principal directions of all panels together.
pub fn project3(panels: &[&[f64]], d: usize) -> Vec<Vec<[f64; 3]>> {
    let basis: Vec<Vec<f64>> = if d <= 3 {
        (0..d)
            .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
            .collect()
    } else {
        principal_directions(panels, d, 3)
    };
    panels
        .iter()
        .map(|x| {
            x.chunks(d)
                .map(|t| {
                    let mut p = [0.0; 3];
                    for (k, b) in basis.iter().enumerate() {
                        p[k] = t.iter().zip(b).map(|(a, b)| a * b).sum();
                    }
                    p
                })
                .collect()
        })
        .collect()
}

/// The leading eigenvectors of the second-moment matrix (power iteration with deflation).
fn principal_directions(panels: &[&[f64]], d: usize, k: usize) -> Vec<Vec<f64>> {
    let mut cov = vec![0.0; d * d];
    for x in panels {
        for t in x.chunks(d) {
            for i in 0..d {
                for j in 0..d {
                    cov[i * d + j] += t[i] * t[j];
                }
            }
        }
    }
    let mut out: Vec<Vec<f64>> = Vec::new();
    for e in 0..k {
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + e * 3) % 5) as f64).collect();
        for _ in 0..300 {
            let mut w: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum())
                .collect();
            for u in &out {
                let a: f64 = w.iter().zip(u).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(u).for_each(|(x, y)| *x -= a * y);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = w.into_iter().map(|x| x / norm).collect();
        }
        out.push(v);
    }
    out
}

/// Draws each (title, tokens) panel side by side into a PNG: an orthographic view from a
/// fixed direction, tokens in front of the sphere dark, behind it faded.
pub fn token_panels(path: &Path, panels: &[(String, Vec<f64>)], d: usize) -> Result<()> {
    register_fonts();
    let coords = project3(
        &panels.iter().map(|(_, x)| x.as_slice()).collect::<Vec<_>>(),
        d,
    );
    let radius = coords
        .iter()
        .flatten()
        .map(|p| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt())
        .fold(1e-12, f64::max);
    let (w, h) = (480 * panels.len() as u32, 520);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    let err = draw_err(path);
    root.fill(&WHITE).map_err(&err)?;
    let areas = root.split_evenly((1, panels.len()));
    // View: azimuth 35 degrees, elevation 25 degrees.
    let (az, el) = (35f64.to_radians(), 25f64.to_radians());
    let view = |p: &[f64; 3]| -> (f64, f64, f64) {
        if d == 2 {
            return (p[0] / radius, p[1] / radius, 1.0);
        }
        let x = p[0] * az.cos() - p[1] * az.sin();
        let y0 = p[0] * az.sin() + p[1] * az.cos();
        let y = y0 * el.sin() + p[2] * el.cos();
        let depth = y0 * el.cos() - p[2] * el.sin();
        (x / radius, y / radius, -depth)
    };
    for ((title, _), (pts, area)) in panels.iter().zip(coords.iter().zip(areas.iter())) {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(10)
            .build_cartesian_2d(-1.15f64..1.15, -1.15f64..1.15)
            .map_err(&err)?;
        let outline = (0..=200).map(|k| {
            let a = k as f64 / 200.0 * std::f64::consts::TAU;
            (a.cos(), a.sin())
        });
        chart
            .draw_series(LineSeries::new(outline, BLACK.mix(0.4)))
            .map_err(&err)?;
        let mut projected: Vec<(f64, f64, f64)> = pts.iter().map(view).collect();
        projected.sort_by(|a, b| a.2.total_cmp(&b.2));
        chart
            .draw_series(projected.iter().map(|&(x, y, front)| {
                let style = if front >= 0.0 {
                    BLUE.mix(0.85).filled()
                } else {
                    BLUE.mix(0.2).filled()
                };
                Circle::new((x, y), 2, style)
            }))
            .map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}
