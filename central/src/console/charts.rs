//! The console's charts, drawn on the server as SVG: bars, a scatter of points and lines of
//! points. Every mark is a link to the customers or the dealer behind it, and carries its value
//! in a `<title>` (the browser's tooltip) and in `data-value`, so a test counts and reads them.
//! Text is escaped here: the templates insert the SVG as it is.

use std::fmt::Write;

/// One bar: its label, its value, where it leads.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub href: String,
}

/// One point of a scatter or a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub href: String,
}

/// A line: its name and its points in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<Point>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 16.0;
const COLOURS: [&str; 6] = [
    "#1f6f8b", "#e07a5f", "#3d8b37", "#8e5ea2", "#c9a227", "#555555",
];

/// `text` safe inside SVG and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as a label: no decimals when whole.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn open(svg: &mut String, kind: &str, caption: &str) {
    let _ = write!(
        svg,
        r#"<svg class="chart {kind}" role="img" aria-label="{}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" direction="ltr">"#,
        escape(caption)
    );
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{}" x2="{WIDTH}" y2="{}" stroke="#999"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#999"/>"##,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM
    );
}

/// The top of the y axis for values up to `max`, and its label.
fn y_axis(svg: &mut String, max: f64) -> f64 {
    let top = if max > 0.0 { max } else { 1.0 };
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#333">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#333">0</text>"##,
        LEFT - 4.0,
        TOP + 10.0,
        escape(&number(top)),
        LEFT - 4.0,
        HEIGHT - BOTTOM
    );
    top
}

fn y_of(value: f64, top: f64) -> f64 {
    HEIGHT - BOTTOM - (value / top).clamp(0.0, 1.0) * (HEIGHT - BOTTOM - TOP)
}

/// A bar chart.
pub fn bars(caption: &str, bars: &[Bar]) -> String {
    let mut svg = String::new();
    open(&mut svg, "bars", caption);
    let top = y_axis(&mut svg, bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    for (i, bar) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let y = y_of(bar.value, top);
        let _ = write!(
            svg,
            r#"<a href="{}"><rect class="bar" data-label="{}" data-value="{}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect></a>"#,
            escape(&bar.href),
            escape(&bar.label),
            bar.value,
            slot * 0.7,
            (HEIGHT - BOTTOM - y).max(0.5),
            COLOURS[0],
            escape(&bar.label),
            escape(&number(bar.value))
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#333">{}</text>"##,
            x + slot * 0.35,
            HEIGHT - BOTTOM + 14.0,
            escape(&bar.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn point(svg: &mut String, p: &Point, cx: f64, cy: f64, colour: &str) {
    let _ = write!(
        svg,
        r#"<a href="{}"><circle class="point" data-label="{}" data-x="{}" data-y="{}" cx="{cx:.1}" cy="{cy:.1}" r="6" fill="{colour}"><title>{}: {}, {}</title></circle></a>"#,
        escape(&p.href),
        escape(&p.label),
        p.x,
        p.y,
        escape(&p.label),
        escape(&number(p.x)),
        escape(&number(p.y))
    );
}

/// A scatter of labelled points; `x_label` and `y_label` name the axes, y runs from 0 to
/// `y_max` (or the highest point).
pub fn scatter(
    caption: &str,
    x_label: &str,
    y_label: &str,
    y_max: Option<f64>,
    points: &[Point],
) -> String {
    let mut svg = String::new();
    open(&mut svg, "scatter", caption);
    let highest = points.iter().map(|p| p.y).fold(0.0, f64::max);
    let top = y_axis(&mut svg, y_max.unwrap_or(highest).max(highest));
    let right = points.iter().map(|p| p.x).fold(0.0, f64::max).max(1.0);
    for p in points {
        let cx = LEFT + 10.0 + (p.x / right) * (WIDTH - LEFT - 30.0);
        point(&mut svg, p, cx, y_of(p.y, top), COLOURS[0]);
        // A label near the right edge is written leftwards, so it is never cut off.
        let (x, anchor) = if cx > WIDTH - 80.0 {
            (cx - 8.0, "end")
        } else {
            (cx + 8.0, "start")
        };
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#333">{}</text>"##,
            y_of(p.y, top) - 8.0,
            escape(&p.label)
        );
    }
    axis_names(&mut svg, x_label, y_label, &number(right));
    svg.push_str("</svg>");
    svg
}

fn axis_names(svg: &mut String, x_label: &str, y_label: &str, x_max: &str) {
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#333">{} (max {})</text><text x="{}" y="{}" font-size="11" fill="#333">{}</text>"##,
        WIDTH - 4.0,
        HEIGHT - 6.0,
        escape(x_label),
        escape(x_max),
        LEFT + 4.0,
        TOP - 4.0,
        escape(y_label)
    );
}

/// Lines of points over a shared x axis (`x_label`), y from 0 to `y_max`.
pub fn lines(caption: &str, x_label: &str, y_max: f64, lines: &[Line]) -> String {
    let mut svg = String::new();
    open(&mut svg, "lines", caption);
    let top = y_axis(&mut svg, y_max);
    let right = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.x))
        .fold(0.0, f64::max)
        .max(1.0);
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let at = |p: &Point| {
            (
                LEFT + 10.0 + (p.x / right) * (WIDTH - LEFT - 120.0),
                y_of(p.y, top),
            )
        };
        let path: Vec<String> = line
            .points
            .iter()
            .map(|p| {
                let (x, y) = at(p);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="line" data-name="{}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            escape(&line.name),
            path.join(" ")
        );
        for p in &line.points {
            let (x, y) = at(p);
            point(&mut svg, p, x, y, colour);
        }
        if let Some(last) = line.points.last() {
            // Names of lines ending at one place are stacked, not drawn over each other.
            let (x, y) = at(last);
            let before = lines[..i]
                .iter()
                .filter(|l| l.points.last().map(&at) == Some((x, y)))
                .count();
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{colour}">{}</text>"#,
                x + 10.0,
                y + 4.0 + 13.0 * before as f64,
                escape(&line.name)
            );
        }
    }
    axis_names(&mut svg, x_label, "", &number(right));
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_links_and_labels_are_escaped() {
        let svg = bars(
            "stages <&>",
            &[
                Bar {
                    label: "a<b".into(),
                    value: 2.0,
                    href: "/x?a=1&b=2".into(),
                },
                Bar {
                    label: "c".into(),
                    value: 0.0,
                    href: "/y".into(),
                },
            ],
        );
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"), "{svg}");
        assert!(svg.contains("href=\"/x?a=1&amp;b=2\""), "{svg}");
        let line = lines(
            "cohorts",
            "years",
            1.0,
            &[Line {
                name: "2025-Q3".into(),
                points: vec![
                    Point {
                        label: "0".into(),
                        x: 0.0,
                        y: 1.0,
                        href: "/c".into(),
                    },
                    Point {
                        label: "1".into(),
                        x: 1.0,
                        y: 0.5,
                        href: "/c".into(),
                    },
                ],
            }],
        );
        assert_eq!(line.matches("class=\"point\"").count(), 2);
        assert_eq!(line.matches("class=\"line\"").count(), 1);
    }
}
