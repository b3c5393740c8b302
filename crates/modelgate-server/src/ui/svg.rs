//! Charts as server-rendered SVG. Written by hand: a reliability diagram is a few lines and dots on fixed
//! axes, and a charting crate would add build time for what is a dozen elements. Numbers are formatted
//! by us, so nothing from user input reaches the markup.

use modelgate_eval::ReliabilityBin;
use std::fmt::Write;

const SIZE: f64 = 240.0;
const MARGIN: f64 = 32.0;

fn x(value: f64) -> f64 {
    MARGIN + value.clamp(0.0, 1.0) * (SIZE - 2.0 * MARGIN)
}

fn y(value: f64) -> f64 {
    SIZE - MARGIN - value.clamp(0.0, 1.0) * (SIZE - 2.0 * MARGIN)
}

/// Axes from 0 to 1 with a diagonal, labelled, and a title for screen readers.
fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" height="{SIZE}" role="img" aria-label="{title}" class="chart"><title>{title}</title>"##
    );
    let _ = write!(
        svg,
        r##"<rect x="{m}" y="{m}" width="{w}" height="{w}" fill="#ffffff" stroke="#595959"/>"##,
        m = MARGIN,
        w = SIZE - 2.0 * MARGIN
    );
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#767676" stroke-dasharray="4 3"/>"##,
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0)
    );
    for tick in [0.0, 0.5, 1.0] {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#333333">{tick}</text><text x="{}" y="{}" font-size="10" text-anchor="end" fill="#333333">{tick}</text>"##,
            x(tick),
            SIZE - MARGIN + 12.0,
            MARGIN - 4.0,
            y(tick) + 3.0
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#333333">{x_label}</text><text x="10" y="{}" font-size="11" text-anchor="middle" fill="#333333" transform="rotate(-90 10 {})">{y_label}</text>"##,
        SIZE / 2.0,
        SIZE - 4.0,
        SIZE / 2.0,
        SIZE / 2.0
    );
    svg
}

/// A data line through (x, y) points on the 0–1 axes.
fn line(svg: &mut String, points: impl Iterator<Item = (f64, f64)>) {
    let path: Vec<String> = points
        .map(|(from_left, from_bottom)| format!("{:.1},{:.1}", x(from_left), y(from_bottom)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f5fa8" stroke-width="2"/>"##,
        path.join(" ")
    );
}

/// Mean score against observed positive rate per score bin (empty bins are left out); the diagonal is
/// perfect calibration.
pub fn reliability_diagram(bins: &[ReliabilityBin]) -> Option<String> {
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter_map(|bin| bin.mean_score.zip(bin.positive_rate))
        .filter(|(score, rate)| score.is_finite() && rate.is_finite())
        .collect();
    if points.is_empty() {
        return None;
    }
    let mut svg = frame(
        "Reliability diagram: mean score against observed positive rate per bin",
        "mean score",
        "positive rate",
    );
    line(&mut svg, points.iter().copied());
    for (score, rate) in &points {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f5fa8"/>"##,
            x(*score),
            y(*rate)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// A ROC curve from (false positive rate, true positive rate) points in order.
pub fn roc_curve(points: &[[f64; 2]]) -> Option<String> {
    if points.len() < 2 {
        return None;
    }
    let mut svg = frame(
        "ROC curve: true positive rate against false positive rate",
        "false positive rate",
        "true positive rate",
    );
    line(&mut svg, points.iter().map(|[fpr, tpr]| (*fpr, *tpr)));
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reliability_diagram_plots_the_filled_bins() {
        let bins = [
            ReliabilityBin {
                lower: 0.0,
                upper: 0.5,
                count: 10.0,
                mean_score: Some(0.25),
                positive_rate: Some(0.2),
            },
            ReliabilityBin {
                lower: 0.5,
                upper: 1.0,
                count: 0.0,
                mean_score: None,
                positive_rate: None,
            },
        ];
        let svg = reliability_diagram(&bins).unwrap();
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(reliability_diagram(&bins[1..]).is_none());
        let roc = roc_curve(&[[0.0, 0.0], [0.2, 0.7], [1.0, 1.0]]).unwrap();
        assert!(roc.contains("polyline") && roc.contains("32.0,208.0"));
        assert!(roc_curve(&[[0.0, 0.0]]).is_none());
    }
}
