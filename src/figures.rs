//! The plotting every figure shares (plotters, PNG): the embedded font, drawing errors, tick
//! labels and a palette, used by `render` (token views, attention heat maps) and by the
//! experiments, whose figures are drawn here: line charts with optional log axes, scatter
//! markers and a reference line, and heat maps.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use crate::error::{Error, Result, file_error};

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

/// The error of a drawing call on the figure at `path`: an I/O failure underneath (a full
/// disk, a file size limit, a folder one may not write) as its system message, never the
/// drawing library's nested error dump.
pub fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| {
        let text = e.to_string();
        match io_reason(&text) {
            Some(reason) => file_error(path, format!("cannot write the picture: {reason}")),
            None => file_error(path, format!("cannot draw: {text}")),
        }
    }
}

/// The system's message inside a drawing library's `IoError(Os { .., message: "..." })` or
/// `IoError(Custom { .., error: "..." })` dump.
fn io_reason(text: &str) -> Option<String> {
    let io = &text[text.find("IoError(")?..];
    let quoted = &io[io.find('"')? + 1..];
    Some(quoted[..quoted.find('"')?].to_string())
}

/// One curve: a label and its points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Draw markers only (data), or a line (fits, theory, dense curves).
    pub markers: bool,
    /// Dashed-looking thin line for theory or fits.
    pub theory: bool,
}

impl Series {
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            markers: false,
            theory: false,
        }
    }
    pub fn markers(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            markers: true,
            theory: false,
        }
    }
    pub fn theory(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            markers: false,
            theory: true,
        }
    }
}

/// Axes of a line chart.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (if log { 0.1 } else { 0.0 }, 1.0);
    }
    if log {
        let (a, b) = (lo.ln(), hi.ln());
        let pad = ((b - a) * 0.05).max(0.05);
        ((a - pad).exp(), (b + pad).exp())
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-9 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

/// The i-th colour of a palette that reads well on white.
pub fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

/// A tick label of the experiments' charts: plain for moderate magnitudes, else scientific
/// (1e-5, 2.5e6).
pub fn tick(v: f64) -> String {
    tick_label(v, 1e5, 1)
}

/// A tick label: 0, plain with at most 4 decimals (trailing zeros cut) for magnitudes in
/// [1e-3, plain_below), else scientific with `digits` decimals (a lone ".0" cut: 1e-5).
pub fn tick_label(v: f64, plain_below: f64, digits: usize) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..plain_below).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.digits$e}").replace(".0e", "e")
    }
}

/// The corner of the plot with the fewest data points under where the legend would go
/// (a box of 40% of the width and, per entry, 6% of the height).
fn legend_corner(
    series: &[Series],
    axes: &Axes,
    x: (f64, f64),
    y: (f64, f64),
) -> SeriesLabelPosition {
    let unit = |v: f64, (lo, hi): (f64, f64), log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let height = (0.06 * series.len() as f64 + 0.04).min(0.9);
    let width = 0.4;
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, right, upper) in corners {
        let mut hits = 0;
        for s in series {
            // Lines are sampled densely between their points, markers counted as they are.
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| {
                    p.0.is_finite()
                        && p.1.is_finite()
                        && (!axes.log_x || p.0 > 0.0)
                        && (!axes.log_y || p.1 > 0.0)
                })
                .map(|p| (unit(p.0, x, axes.log_x), unit(p.1, y, axes.log_y)))
                .collect();
            let mut samples = pts.clone();
            if !s.markers {
                for w in pts.windows(2) {
                    for k in 1..8 {
                        let f = k as f64 / 8.0;
                        samples.push((
                            w[0].0 + f * (w[1].0 - w[0].0),
                            w[0].1 + f * (w[1].1 - w[0].1),
                        ));
                    }
                }
            }
            hits += samples
                .iter()
                .filter(|&&(u, v)| {
                    let in_x = if right { u >= 1.0 - width } else { u <= width };
                    let in_y = if upper {
                        v >= 1.0 - height
                    } else {
                        v <= height
                    };
                    in_x && in_y
                })
                .count();
        }
        if hits < best.0 {
            best = (hits, pos);
        }
    }
    best.1
}

/// A line chart with a legend; log axes where asked (non-positive values are left out there).
pub fn lines(path: &Path, axes: &Axes, series: &[Series]) -> Result<()> {
    register_fonts();
    let e = draw_err(path);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = range(all().map(|p| p.0), axes.log_x);
    let (y0, y1) = range(all().map(|p| p.1), axes.log_y);
    let legend_at = legend_corner(series, axes, (x0, x1), (y0, y1));
    let root = BitMapBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(format!("{x:?}")))?;
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(axes.x_label)
                .y_desc(axes.y_label)
                .x_labels(if axes.log_x { 6 } else { 10 })
                .y_labels(if axes.log_y { 8 } else { 10 })
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|x| e(format!("{x:?}")))?;
            for (i, s) in series.iter().enumerate() {
                let c = colour(i);
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| {
                        p.0.is_finite()
                            && p.1.is_finite()
                            && (!axes.log_x || p.0 > 0.0)
                            && (!axes.log_y || p.1 > 0.0)
                    })
                    .collect();
                if s.markers {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                        .map_err(|x| e(format!("{x:?}")))?
                        .label(s.label.clone())
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
                } else {
                    let width = if s.theory { 1 } else { 2 };
                    let style = if s.theory {
                        BLACK.mix(0.7).stroke_width(width)
                    } else {
                        c.stroke_width(width)
                    };
                    chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(|x| e(format!("{x:?}")))?
                        .label(s.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 15))
                .position(legend_at.clone())
                .draw()
                .map_err(|x| e(format!("{x:?}")))?;
        }};
    }
    macro_rules! builder {
        () => {{
            let mut b = ChartBuilder::on(&root);
            b.caption(axes.title, ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(80);
            b
        }};
    }
    match (axes.log_x, axes.log_y) {
        (false, false) => draw!(
            builder!()
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|x| e(format!("{x:?}")))?
        ),
        (true, false) => draw!(
            builder!()
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(|x| e(format!("{x:?}")))?
        ),
        (false, true) => draw!(
            builder!()
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(|x| e(format!("{x:?}")))?
        ),
        (true, true) => draw!(
            builder!()
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(|x| e(format!("{x:?}")))?
        ),
    }
    root.present().map_err(|x| e(format!("{x:?}")))?;
    Ok(())
}

/// A heat map of values[i][j] over cells x_edges[j]..x_edges[j+1] by y_edges[i]..y_edges[i+1]
/// (values in [lo, hi], a white-to-blue scale), with a colour bar.
#[allow(clippy::too_many_arguments)]
pub fn heatmap(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_edges: &[f64],
    y_edges: &[f64],
    values: &[Vec<f64>],
    (lo, hi): (f64, f64),
) -> Result<()> {
    register_fonts();
    let e = draw_err(path);
    let root = BitMapBackend::new(path, (980, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(format!("{x:?}")))?;
    let (main, bar) = root.split_horizontally(860);
    let colour_of = |v: f64| {
        let f = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        // white -> dark blue through a light blue
        let r = (255.0 * (1.0 - f) + 8.0 * f) as u8;
        let g = (255.0 * (1.0 - f) + 48.0 * f) as u8;
        let b = (255.0 * (1.0 - f) + 107.0 * f) as u8;
        RGBColor(r, g, b)
    };
    let mut chart = ChartBuilder::on(&main)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            x_edges[0]..x_edges[x_edges.len() - 1],
            y_edges[0]..y_edges[y_edges.len() - 1],
        )
        .map_err(|x| e(format!("{x:?}")))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|x| e(format!("{x:?}")))?;
    for (i, row) in values.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x_edges[j], y_edges[i]), (x_edges[j + 1], y_edges[i + 1])],
                    colour_of(v).filled(),
                )))
                .map_err(|x| e(format!("{x:?}")))?;
        }
    }
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(50)
        .margin_bottom(65)
        .margin_right(10)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|x| e(format!("{x:?}")))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|x| e(format!("{x:?}")))?;
    let steps = 100;
    for k in 0..steps {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        cb.draw_series(std::iter::once(Rectangle::new(
            [(0.0, a), (1.0, b)],
            colour_of(a).filled(),
        )))
        .map_err(|x| e(format!("{x:?}")))?;
    }
    root.present().map_err(|x| e(format!("{x:?}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_underneath_a_drawing_are_one_system_message() {
        let os = "Drawing backend error: ImageError(IoError(Os { code: 13, kind: \
                  PermissionDenied, message: \"Permission denied\" }))";
        let custom =
            "ImageError(IoError(Custom { kind: FileTooLarge, error: \"File too large\" }))";
        assert_eq!(io_reason(os).as_deref(), Some("Permission denied"));
        assert_eq!(io_reason(custom).as_deref(), Some("File too large"));
        assert_eq!(io_reason("font not found"), None);
        let e = draw_err(Path::new("/sys/x.png"))(os).to_string();
        assert_eq!(e, "/sys/x.png: cannot write the picture: Permission denied");
    }
}
