//! Pictures of token configurations: orthographic views of the sphere (d = 3), the circle
//! (d = 2), or the first three principal directions (d > 3), as PNG panels, one PNG per
//! snapshot or an animated GIF through plotters; and heat maps of the attention matrix w_ij.
//!
//! Tokens are coloured by their index i (a hue ramp over i / n), so that the motion of each
//! token can be followed from frame to frame.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;

use crate::error::{Result, file_error, input};
use crate::figures::{draw_err, register_fonts, tick_label};
use crate::model::weights::matvec;
use crate::model::{Attention, Model, Weights};

/// Size in pixels of one token panel (one frame of the animation).
pub const PANEL: (u32, u32) = (480, 540);

/// The largest n whose attention matrix [`attention_panels`] draws.
pub const MAX_ATTENTION_N: usize = 2048;

/// Coordinates in at most 3 dimensions for every panel, in one common basis: the tokens
/// themselves for d <= 3, else the first three principal directions of all panels together.
pub fn project3(panels: &[&[f64]], d: usize) -> Vec<Vec<[f64; 3]>> {
    let basis = projection_basis(panels, d);
    panels.iter().map(|x| project_with(&basis, x, d)).collect()
}

/// The (at most three) directions tokens are projected on.
fn projection_basis(panels: &[&[f64]], d: usize) -> Vec<Vec<f64>> {
    if d <= 3 {
        (0..d)
            .map(|i| (0..d).map(|j| f64::from(u8::from(i == j))).collect())
            .collect()
    } else {
        principal_directions(panels, d, 3)
    }
}

fn project_with(basis: &[Vec<f64>], x: &[f64], d: usize) -> Vec<[f64; 3]> {
    x.chunks(d)
        .map(|t| {
            let mut p = [0.0; 3];
            for (k, b) in basis.iter().enumerate() {
                p[k] = t.iter().zip(b).map(|(a, b)| a * b).sum();
            }
            p
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

/// The colour of token i of n: a hue ramp from red (i = 0) through green and blue to
/// violet (i = n - 1), stopping short of red so that the two ends differ.
pub fn token_colour(i: usize, n: usize) -> HSLColor {
    let s = i as f64 / n.saturating_sub(1).max(1) as f64;
    HSLColor(0.8 * s, 0.85, 0.45)
}

/// One view for a whole set of snapshots: the projection basis (principal directions of
/// all snapshots together for d > 3) and the radius that scales every snapshot alike.
pub struct TokenView {
    d: usize,
    basis: Vec<Vec<f64>>,
    radius: f64,
}

impl TokenView {
    pub fn new(snapshots: &[&[f64]], d: usize) -> Self {
        let basis = projection_basis(snapshots, d);
        let radius = snapshots
            .iter()
            .flat_map(|x| project_with(&basis, x, d))
            .map(|p| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt())
            .fold(1e-12, f64::max);
        TokenView { d, basis, radius }
    }

    /// Screen coordinates (x, y in the unit disc) and depth (>= 0 in front of the sphere)
    /// of every token, in token order. View: azimuth 35 degrees, elevation 25 degrees.
    fn screen(&self, x: &[f64]) -> Vec<(f64, f64, f64)> {
        let (az, el) = (35f64.to_radians(), 25f64.to_radians());
        let r = self.radius;
        project_with(&self.basis, x, self.d)
            .iter()
            .map(|p| {
                if self.d == 2 {
                    return (p[0] / r, p[1] / r, 1.0);
                }
                let x = p[0] * az.cos() - p[1] * az.sin();
                let y0 = p[0] * az.sin() + p[1] * az.cos();
                let y = y0 * el.sin() + p[2] * el.cos();
                let depth = y0 * el.cos() - p[2] * el.sin();
                (x / r, y / r, -depth)
            })
            .collect()
    }

    /// Draws one snapshot into `area`: the circle (the sphere's outline), the tokens (in
    /// front of the sphere vivid, behind it faded, coloured by index) and a key of the colours.
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        x: &[f64],
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = x.len() / self.d;
        let (w, h) = area.dim_in_pixel();
        let (top, key) = area.split_vertically(h.saturating_sub(40));
        let mut chart = ChartBuilder::on(&top)
            .caption(title, ("sans-serif", 22))
            .margin(10)
            .build_cartesian_2d(-1.15f64..1.15, -1.15f64..1.15)?;
        if self.d > 3 {
            let note = format!("d = {}: first 3 principal directions", self.d);
            let font = ("sans-serif", 13).into_font().color(&BLACK.mix(0.6));
            top.draw(&Text::new(note, (6, 36), font))?;
        }
        let outline = (0..=200).map(|k| {
            let a = k as f64 / 200.0 * std::f64::consts::TAU;
            (a.cos(), a.sin())
        });
        chart.draw_series(LineSeries::new(outline, BLACK.mix(0.4)))?;
        let mut pts: Vec<(usize, (f64, f64, f64))> =
            self.screen(x).into_iter().enumerate().collect();
        // Back to front, so that tokens in front cover those behind.
        pts.sort_by(|a, b| a.1.2.total_cmp(&b.1.2));
        let radius = if n > 20_000 { 1 } else { 2 };
        chart.draw_series(pts.iter().map(|&(i, (x, y, front))| {
            let c = token_colour(i, n);
            let style = if front >= 0.0 {
                c.mix(0.9).filled()
            } else {
                c.mix(0.25).filled()
            };
            Circle::new((x, y), radius, style)
        }))?;
        // The colour key: token 0 ... token n - 1.
        let (x0, x1) = (70i32, w as i32 - 70);
        let steps = 200;
        for s in 0..steps {
            let a = x0 + (x1 - x0) * s / steps;
            let b = x0 + (x1 - x0) * (s + 1) / steps;
            let c = token_colour(s as usize, steps as usize);
            key.draw(&Rectangle::new([(a, 6), (b, 20)], c.filled()))?;
        }
        let font = ("sans-serif", 14).into_font().color(&BLACK);
        key.draw(&Text::new("token 0", (4, 6), font.clone()))?;
        key.draw(&Text::new(
            format!("{}", n.saturating_sub(1)),
            (x1 + 6, 6),
            font,
        ))?;
        Ok(())
    }
}

/// Draws each (title, tokens) panel side by side into a PNG: an orthographic view from a
/// fixed direction, tokens in front of the sphere vivid, behind it faded, coloured by index.
pub fn token_panels(path: &Path, panels: &[(String, Vec<f64>)], d: usize) -> Result<()> {
    register_fonts();
    let view = TokenView::new(
        &panels.iter().map(|(_, x)| x.as_slice()).collect::<Vec<_>>(),
        d,
    );
    let (w, h) = (PANEL.0 * panels.len() as u32, PANEL.1);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    let err = draw_err(path);
    root.fill(&WHITE).map_err(&err)?;
    let areas = root.split_evenly((1, panels.len()));
    for ((title, x), area) in panels.iter().zip(areas.iter()) {
        view.draw(area, title, x).map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// The file name of frame k.
pub fn frame_name(k: usize) -> String {
    format!("frame_{k:04}.png")
}

/// Writes one PNG per (title, tokens) snapshot into `dir` (frame_0000.png, ...), all in one
/// view. The frames are drawn into a folder beside `dir` and swapped in when all are done, so
/// that a failure leaves an earlier rendering as it was; frames of an earlier rendering
/// (frame_NNNN.png) are replaced, other files in `dir` kept. Returns the paths written.
pub fn token_frames(dir: &Path, frames: &[(String, &[f64])], d: usize) -> Result<Vec<PathBuf>> {
    register_fonts();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "frames".into());
    let staging = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| file_error(&staging, format!("cannot create the frames folder: {e}")))?;
    let view = TokenView::new(&frames.iter().map(|(_, x)| *x).collect::<Vec<_>>(), d);
    let drawn: Result<Vec<()>> = frames
        .par_iter()
        .enumerate()
        .map(|(k, (title, x))| {
            let path = staging.join(frame_name(k));
            let err = draw_err(&path);
            let root = BitMapBackend::new(&path, PANEL).into_drawing_area();
            root.fill(&WHITE).map_err(&err)?;
            view.draw(&root, title, x).map_err(&err)?;
            root.present().map_err(&err)?;
            Ok(())
        })
        .collect();
    if let Err(e) = drawn {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Swap in: earlier frames go, the new ones move in, other files in `dir` stay.
    std::fs::create_dir_all(dir)
        .map_err(|e| file_error(dir, format!("cannot create the frames folder: {e}")))?;
    for entry in std::fs::read_dir(dir).map_err(|e| file_error(dir, e))? {
        let entry = entry.map_err(|e| file_error(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name
            .strip_prefix("frame_")
            .and_then(|s| s.strip_suffix(".png"))
            .is_some_and(|k| k.len() >= 4 && k.bytes().all(|b| b.is_ascii_digit()));
        if stale && name.as_ref() >= frame_name(frames.len()).as_str() {
            std::fs::remove_file(entry.path())
                .map_err(|e| file_error(entry.path(), format!("cannot remove: {e}")))?;
        }
    }
    let mut written = Vec::with_capacity(frames.len());
    for k in 0..frames.len() {
        let to = dir.join(frame_name(k));
        std::fs::rename(staging.join(frame_name(k)), &to)
            .map_err(|e| file_error(&to, format!("cannot move into place: {e}")))?;
        written.push(to);
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(written)
}

/// Writes an animated GIF (looping) of the (title, tokens) snapshots, all in one view,
/// `delay_ms` per frame (GIF keeps hundredths of a second: rounded to 10 ms).
pub fn token_gif(path: &Path, frames: &[(String, &[f64])], d: usize, delay_ms: u32) -> Result<()> {
    register_fonts();
    let err = draw_err(path);
    let view = TokenView::new(&frames.iter().map(|(_, x)| *x).collect::<Vec<_>>(), d);
    let root = BitMapBackend::gif(path, PANEL, delay_ms)
        .map_err(|e| file_error(path, format!("cannot create the GIF: {e}")))?
        .into_drawing_area();
    for (title, x) in frames {
        root.fill(&WHITE).map_err(&err)?;
        view.draw(&root, title, x).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(())
}

/// The attention matrix of one system's tokens x [n, d] under one head, in f64, row-major
/// n x n: w_ij = exp(s_ij) / sum_k exp(s_ik) (SA) or exp(s_ij) / Z_i (USA), with
/// s_ij = beta <Q x_i, K x_j> (minus (lambda / n)(i - j) with ALiBi) over the keys token i
/// sees; entries a query does not see (j > i under the causal mask) are NaN.
pub fn attention_matrix(model: &Model, head: &Weights, beta: f64, x: &[f64], d: usize) -> Vec<f64> {
    let n = x.len() / d;
    let mut qx = vec![0.0; n * d];
    let mut kx = vec![0.0; n * d];
    for ((q, k), t) in qx.chunks_mut(d).zip(kx.chunks_mut(d)).zip(x.chunks(d)) {
        matvec(&head.q, t, q);
        matvec(&head.k, t, k);
    }
    let slope = model.alibi_slope(n);
    let mut w = vec![f64::NAN; n * n];
    w.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        let qi = &qx[i * d..(i + 1) * d];
        let seen = model.keys_seen(i, n);
        for (j, r) in row[..seen].iter_mut().enumerate() {
            let kj = &kx[j * d..(j + 1) * d];
            let dot: f64 = qi.iter().zip(kj).map(|(a, b)| a * b).sum();
            *r = beta * dot - slope * (i - j.min(i)) as f64;
        }
        let scores = &mut row[..seen];
        match model.attention {
            Attention::Sa => {
                let mx = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut total = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - mx).exp();
                    total += *s;
                }
                scores.iter_mut().for_each(|s| *s /= total);
            }
            Attention::Usa => {
                let log_z = model.usa_log_normaliser(i, n);
                scores.iter_mut().for_each(|s| *s = (*s - log_z).exp());
            }
        }
    });
    w
}

/// Draws each (title, w) attention matrix (row-major n x n, NaN where masked) side by side
/// as a heat map into a PNG, query i down, key j across, tokens in index order, each with
/// its own colour bar from 0 to its largest weight. Large n is shown in blocks (the mean
/// weight of each block).
pub fn attention_panels(path: &Path, panels: &[(String, Vec<f64>)], n: usize) -> Result<()> {
    if n == 0 || n > MAX_ATTENTION_N {
        return Err(input(format!(
            "the attention heat map takes 1 to {MAX_ATTENTION_N} tokens, got n = {n}"
        )));
    }
    register_fonts();
    let err = draw_err(path);
    let (pw, ph) = (640u32, 620u32);
    let root = BitMapBackend::new(path, (pw * panels.len() as u32, ph)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let areas = root.split_evenly((1, panels.len()));
    for ((title, w), area) in panels.iter().zip(areas.iter()) {
        if w.len() != n * n {
            return Err(input(format!(
                "an attention matrix of {} entries is not {n} x {n}",
                w.len()
            )));
        }
        let max = w
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(0.0f64, f64::max);
        if !max.is_finite() {
            return Err(input(format!(
                "{title}: the attention weights overflow f64 (beta too large for USA?)"
            )));
        }
        // The colour scale ends at the largest weight, unless a few weights dwarf the rest
        // (the first rows under a causal mask, where w_00 = 1): then at the 99.5th
        // percentile, larger weights drawn in the top colour.
        let mut visible: Vec<f64> = w.iter().copied().filter(|v| !v.is_nan()).collect();
        let q = (visible.len() - 1) * 995 / 1000;
        let (_, &mut quantile, _) = visible.select_nth_unstable_by(q, f64::total_cmp);
        drop(visible);
        let clipped = quantile > 0.0 && max > 2.0 * quantile;
        let top = if clipped {
            quantile
        } else if max > 0.0 {
            max
        } else {
            1.0
        };
        // g x g blocks of (nearly) equal size, each the mean of its visible entries.
        let g = n.min(480);
        let edge = |b: usize| b * n / g;
        let mut grid = vec![f64::NAN; g * g];
        grid.par_chunks_mut(g).enumerate().for_each(|(bi, row)| {
            for (bj, cell) in row.iter_mut().enumerate() {
                let (mut sum, mut count) = (0.0, 0usize);
                for i in edge(bi)..edge(bi + 1) {
                    for &v in &w[i * n + edge(bj)..i * n + edge(bj + 1)] {
                        if !v.is_nan() {
                            sum += v;
                            count += 1;
                        }
                    }
                }
                if count > 0 {
                    *cell = sum / count as f64;
                }
            }
        });
        let (left, right) = area.split_horizontally(pw - 110);
        let nf = n as f64;
        let flip = |v: &f64| format!("{:.0}", nf - v);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..nf, 0f64..nf)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("key j")
            .y_desc("query i")
            .y_label_formatter(&flip)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(&err)?;
        let masked = RGBColor(225, 225, 225);
        chart
            .draw_series((0..g * g).map(|c| {
                let (bi, bj) = (c / g, c % g);
                let v = grid[c];
                let style = if v.is_nan() {
                    masked.filled()
                } else {
                    ViridisRGB::get_color((v / top).min(1.0)).filled()
                };
                // Row i is drawn from the top down: y = n - i.
                Rectangle::new(
                    [
                        (edge(bj) as f64, nf - edge(bi) as f64),
                        (edge(bj + 1) as f64, nf - edge(bi + 1) as f64),
                    ],
                    style,
                )
            }))
            .map_err(&err)?;
        if clipped {
            let font = ("sans-serif", 12).into_font().color(&BLACK);
            right
                .draw(&Text::new("clipped;", (6, 6), font.clone()))
                .map_err(&err)?;
            right
                .draw(&Text::new(format!("max {}", tick(max)), (6, 20), font))
                .map_err(&err)?;
        }
        let mut bar = ChartBuilder::on(&right)
            .margin_top(40)
            .margin_bottom(50)
            .margin_right(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1.0, 0f64..top)
            .map_err(&err)?;
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&|v| tick(*v))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
        let steps = 200;
        bar.draw_series((0..steps).map(|s| {
            let (a, b) = (s as f64 / steps as f64, (s + 1) as f64 / steps as f64);
            Rectangle::new(
                [(0.0, a * top), (1.0, b * top)],
                ViridisRGB::get_color((a + b) / 2.0).filled(),
            )
        }))
        .map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// A short tick label (plain below 1e4, else two decimals: 1.25e-5).
fn tick(v: f64) -> String {
    tick_label(v, 1e4, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Geometry, Mask};

    #[test]
    fn attention_rows_of_sa_sum_to_one_and_causal_hides_the_future() {
        let d = 3;
        let x: Vec<f64> = (0..12 * d)
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 5.0)
            .collect();
        for mask in [Mask::Full, Mask::Causal] {
            let model = Model::new(
                Attention::Sa,
                Geometry::Sphere,
                mask,
                Weights::random(d, 3),
                vec![2.0],
            );
            let w = attention_matrix(&model, &model.heads[0], 2.0, &x, d);
            for i in 0..12 {
                let row = &w[i * 12..(i + 1) * 12];
                let sum: f64 = row.iter().filter(|v| !v.is_nan()).sum();
                assert!((sum - 1.0).abs() < 1e-12, "{mask:?} row {i}: {sum}");
                let hidden = row.iter().filter(|v| v.is_nan()).count();
                let expected = if mask == Mask::Causal { 11 - i } else { 0 };
                assert_eq!(hidden, expected);
            }
        }
    }

    #[test]
    fn usa_weights_are_exp_score_over_the_count_of_keys() {
        let d = 2;
        let x = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0];
        let model = Model::new(
            Attention::Usa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            vec![1.5],
        );
        let w = attention_matrix(&model, &model.heads[0], 1.5, &x, d);
        assert!((w[0] - 1.5f64.exp() / 3.0).abs() < 1e-12);
        assert!((w[1] - 1.0 / 3.0).abs() < 1e-12);
        assert!((w[2] - (-1.5f64).exp() / 3.0).abs() < 1e-12);
    }
}
