//! SVG charts of what a model costs against how well it works (`slices --plot`,
//! `compress --sweep --plot`): one or more panels side by side, each a set of point
//! series on linear axes from zero. SVG needs no fonts or bitmaps, so the chart is the
//! same on every machine.

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

/// A set of points drawn alike.
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
    /// Join the points (sorted by x) with a line.
    pub line: bool,
    /// Draw larger, in a strong colour: the points that matter (e.g. a Pareto front).
    pub highlight: bool,
}

/// One chart.
pub struct Panel {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x: String,
    /// Y axis description.
    pub y: String,
    /// The series, drawn in order.
    pub series: Vec<Series>,
}

/// The upper end of an axis holding `values` (10 % headroom, at least `floor`).
fn axis_max(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    (values.filter(|v| v.is_finite()).fold(0.0, f64::max) * 1.1).max(floor)
}

/// Draws `panels` side by side, each `size` pixels, as an SVG document.
pub fn svg(panels: &[Panel], size: (u32, u32)) -> Result<String> {
    if panels
        .iter()
        .all(|p| p.series.iter().all(|s| s.points.is_empty()))
    {
        bail!("--plot: nothing to plot");
    }
    let draw = |e: &dyn std::fmt::Display| anyhow!("--plot: {e}");
    let mut svg = String::new();
    {
        let width = size.0 * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (width, size.1)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let areas = root.split_evenly((1, panels.len()));
        for (panel, area) in panels.iter().zip(&areas) {
            let all = || panel.series.iter().flat_map(|s| s.points.iter());
            let x_max = axis_max(all().map(|p| p.0), f64::MIN_POSITIVE);
            let y_max = axis_max(all().map(|p| p.1), 1.0);
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 20))
                .margin(20)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(|e| draw(&e))?;
            chart
                .configure_mesh()
                .x_desc(panel.x.as_str())
                .y_desc(panel.y.as_str())
                .draw()
                .map_err(|e| draw(&e))?;
            for (k, s) in panel.series.iter().enumerate() {
                let color = if s.highlight {
                    RED.to_rgba()
                } else {
                    Palette99::pick(k).to_rgba()
                };
                let radius = if s.highlight { 6 } else { 4 };
                let mut points = s.points.clone();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let legend = move |(x, y): (i32, i32)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                };
                if s.line {
                    chart
                        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                        .map_err(|e| draw(&e))?;
                }
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|&p| Circle::new(p, radius, color.filled())),
                    )
                    .map_err(|e| draw(&e))?
                    .label(s.label.as_str())
                    .legend(legend);
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| draw(&e))?;
        }
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_drawn_side_by_side_with_their_labels() {
        let panel = |title: &str| Panel {
            title: title.into(),
            x: "size".into(),
            y: "mAP50".into(),
            series: vec![
                Series {
                    label: "all".into(),
                    points: vec![(1.0, 0.5), (2.0, 0.9)],
                    line: false,
                    highlight: false,
                },
                Series {
                    label: "front".into(),
                    points: vec![(2.0, 0.9)],
                    line: true,
                    highlight: true,
                },
            ],
        };
        let svg = svg(&[panel("left"), panel("right")], (400, 300)).unwrap();
        assert!(svg.contains("width=\"800\""), "two 400 px panels");
        for text in ["left", "right", "front", "mAP50"] {
            assert!(svg.contains(text), "{text} missing");
        }
        let empty = Panel {
            series: Vec::new(),
            ..panel("x")
        };
        assert!(svg_err(&[empty]).contains("nothing to plot"));
    }

    fn svg_err(panels: &[Panel]) -> String {
        super::svg(panels, (400, 300)).unwrap_err().to_string()
    }
}
