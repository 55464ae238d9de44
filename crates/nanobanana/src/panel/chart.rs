//! Charts drawn on the server as SVG (pure functions, no JavaScript, no CDN): one series or a
//! few per chart over the days of a window, as lines or as stacked bars, with a y axis of round
//! numbers, day labels and a legend. Values are integers (kopecks, counts); `label` turns an
//! axis value into text (rubles for kopecks).

use std::fmt::Write;

// `texts::escape` covers XML content and the double-quoted attributes the charts write.
use crate::texts::escape;

/// One named series: one value per x label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
}

/// How the series are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A polyline per series, a dot per point.
    Lines,
    /// A bar per x label, the series stacked in order (negative values count as zero).
    StackedBars,
}

/// Colors of the series in order (wraps around).
pub const PALETTE: [&str; 6] = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];

pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 240.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 28.0;
/// Gridlines above zero.
const TICKS: i64 = 4;
/// At most this many x labels are written (every k-th day otherwise).
const MAX_X_LABELS: usize = 8;

/// The plot area's geometry for `n` x positions and the y axis' top value.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub n: usize,
    pub top: i64,
}

impl Frame {
    /// The x of position `i`: the middle of its band.
    pub fn x(&self, i: usize) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (i as f64 + 0.5) / self.n.max(1) as f64
    }

    /// The y of value `v` (the axis runs from 0 to `top`).
    pub fn y(&self, v: i64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        HEIGHT - BOTTOM - plot * (v.max(0) as f64) / self.top.max(1) as f64
    }

    /// The width of a bar.
    pub fn band(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.n.max(1) as f64 * 0.7
    }
}

/// The smallest "round" number (1, 2, 2.5 or 5 × 10^k, times `TICKS`) at or above `max`.
pub fn nice_top(max: i64) -> i64 {
    if max <= 0 {
        return TICKS;
    }
    let step = (max + TICKS - 1) / TICKS;
    let mut magnitude = 1i64;
    while magnitude.saturating_mul(10) <= step {
        magnitude = magnitude.saturating_mul(10);
    }
    let quarter = if magnitude >= 10 { magnitude / 10 * 25 } else { 5 * magnitude };
    let nice = [magnitude, 2 * magnitude, quarter, 5 * magnitude, 10 * magnitude]
        .into_iter()
        .find(|s| *s >= step)
        .unwrap_or(step);
    nice.saturating_mul(TICKS)
}

/// The chart as an `<svg>` element. `labels` name the x positions; each series has one value
/// per label (missing ones count as zero).
pub fn chart(
    title: &str,
    kind: Kind,
    labels: &[String],
    series: &[Series],
    label: impl Fn(i64) -> String,
) -> String {
    let n = labels.len();
    let value = |s: &Series, i: usize| s.values.get(i).copied().unwrap_or(0);
    let max = match kind {
        Kind::Lines => series.iter().flat_map(|s| (0..n).map(move |i| value(s, i))).max().unwrap_or(0),
        Kind::StackedBars => {
            (0..n).map(|i| series.iter().map(|s| value(s, i).max(0)).sum()).max().unwrap_or(0)
        }
    };
    let frame = Frame { n, top: nice_top(max) };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    axes(&mut svg, &frame, labels, &label);
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<g class="legend"><rect x="{x:.1}" y="6" width="10" height="10" fill="{color}"/><text x="{tx:.1}" y="15" font-size="11">{name}</text></g>"#,
            x = LEFT + 130.0 * k as f64,
            tx = LEFT + 130.0 * k as f64 + 14.0,
            name = escape(&s.name)
        );
    }
    match kind {
        Kind::Lines => lines(&mut svg, &frame, series, &label),
        Kind::StackedBars => bars(&mut svg, &frame, labels, series, &label),
    }
    svg.push_str("</svg>");
    svg
}

fn axes(svg: &mut String, frame: &Frame, labels: &[String], label: &impl Fn(i64) -> String) {
    svg.push_str(r##"<g class="axes" font-size="10" fill="#555">"##);
    for t in 0..=TICKS {
        let v = frame.top / TICKS * t;
        let y = frame.y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{l}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 3.5,
            l = escape(&label(v))
        );
    }
    let every = labels.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, text) in labels.iter().enumerate() {
        if i % every == 0 || i + 1 == labels.len() {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{y}" text-anchor="middle">{t}</text>"#,
                x = frame.x(i),
                y = HEIGHT - 10.0,
                t = escape(text)
            );
        }
    }
    svg.push_str("</g>");
}

fn lines(svg: &mut String, frame: &Frame, series: &[Series], label: &impl Fn(i64) -> String) {
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let n = frame.n;
        let points: Vec<String> = (0..n)
            .map(|i| format!("{:.1},{:.1}", frame.x(i), frame.y(s.values.get(i).copied().unwrap_or(0))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" data-series="{name}" fill="none" stroke="{color}" stroke-width="2" points="{p}"/>"#,
            name = escape(&s.name),
            p = points.join(" ")
        );
        for i in 0..n {
            let v = s.values.get(i).copied().unwrap_or(0);
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{color}"><title>{name}: {l}</title></circle>"#,
                x = frame.x(i),
                y = frame.y(v),
                name = escape(&s.name),
                l = escape(&label(v))
            );
        }
    }
}

fn bars(
    svg: &mut String,
    frame: &Frame,
    labels: &[String],
    series: &[Series],
    label: &impl Fn(i64) -> String,
) {
    let width = frame.band();
    for i in 0..frame.n {
        let mut base = 0i64;
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0).max(0);
            if v == 0 {
                continue;
            }
            let (y_top, y_base) = (frame.y(base + v), frame.y(base));
            let _ = write!(
                svg,
                r#"<rect class="bar" data-series="{name}" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{h:.1}" fill="{color}"><title>{day} {name}: {l}</title></rect>"#,
                name = escape(&s.name),
                x = frame.x(i) - width / 2.0,
                y = y_top,
                h = y_base - y_top,
                color = PALETTE[k % PALETTE.len()],
                day = escape(labels.get(i).map_or("", String::as_str)),
                l = escape(&label(v))
            );
            base += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;
    use quick_xml::Reader;

    use super::*;

    /// Every element of `svg` (checked well-formed: quick-xml refuses mismatched end tags) as
    /// (name, attributes).
    fn elements(svg: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut reader = Reader::from_str(svg);
        let mut out = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.expect("a valid attribute");
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().expect("escaped value").into_owned(),
                            )
                        })
                        .collect();
                    out.push((name, attrs));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn attr<'a>(element: &'a (String, Vec<(String, String)>), name: &str) -> &'a str {
        element.1.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    fn days(n: usize) -> Vec<String> {
        (1..=n).map(|d| format!("{d:02}.12")).collect()
    }

    #[test]
    fn round_tops() {
        assert_eq!(nice_top(0), 4);
        assert_eq!(nice_top(3), 4);
        assert_eq!(nice_top(10), 20);
        assert_eq!(nice_top(100), 100);
        assert_eq!(nice_top(101), 200);
        assert_eq!(nice_top(12_345), 20_000);
    }

    #[test]
    fn a_line_chart_has_one_point_per_day_where_the_values_say() {
        let series = [
            Series { name: "Revenue <₽>".into(), values: vec![0, 100, 200] },
            Series { name: "Cost".into(), values: vec![50, 50, 50] },
        ];
        let svg = chart("Revenue & cost", Kind::Lines, &days(3), &series, |v| format!("{v} ₽"));
        let all = elements(&svg);
        assert_eq!(all[0].0, "svg");
        let polylines: Vec<_> = all.iter().filter(|e| e.0 == "polyline").collect();
        assert_eq!(polylines.len(), 2);
        assert_eq!(attr(polylines[0], "data-series"), "Revenue <₽>");
        let frame = Frame { n: 3, top: 200 };
        let expected: Vec<String> = [0, 100, 200]
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", frame.x(i), frame.y(*v)))
            .collect();
        assert_eq!(attr(polylines[0], "points"), expected.join(" "));
        // The top of the axis is the highest value here; zero is the bottom of the plot.
        assert_eq!(frame.y(200), TOP);
        assert_eq!(frame.y(0), HEIGHT - BOTTOM);
        assert_eq!(all.iter().filter(|e| e.0 == "circle").count(), 6);
        assert!(svg.contains(">200 ₽<"), "the axis is labelled: {svg}");
        assert!(svg.contains(">03.12<"), "the last day is labelled");
        assert!(svg.contains("Revenue &amp; cost"));
    }

    #[test]
    fn stacked_bars_add_up_per_day() {
        let series = [
            Series { name: "nb21".into(), values: vec![3, 0, 5] },
            Series { name: "pro".into(), values: vec![1, 2, 0] },
        ];
        let svg = chart("Generations", Kind::StackedBars, &days(3), &series, |v| v.to_string());
        let all = elements(&svg);
        let bars: Vec<_> = all.iter().filter(|e| e.0 == "rect" && attr(e, "class") == "bar").collect();
        assert_eq!(bars.len(), 4, "zero values draw nothing");
        let frame = Frame { n: 3, top: nice_top(5) };
        let height = |e: &(String, Vec<(String, String)>)| attr(e, "height").parse::<f64>().unwrap();
        let unit = (HEIGHT - TOP - BOTTOM) / frame.top as f64;
        assert!((height(bars[0]) - 3.0 * unit).abs() < 0.11);
        assert!((height(bars[1]) - 1.0 * unit).abs() < 0.11);
        // The second series of day one sits on top of the first.
        let top_of_first = attr(bars[0], "y").parse::<f64>().unwrap();
        let bottom_of_second = attr(bars[1], "y").parse::<f64>().unwrap() + height(bars[1]);
        assert!((top_of_first - bottom_of_second).abs() < 0.11);
        assert_eq!(attr(bars[2], "data-series"), "pro");
    }

    #[test]
    fn many_days_get_fewer_labels_and_empty_charts_still_draw() {
        let series = [Series { name: "users".into(), values: vec![1; 30] }];
        let svg = chart("Users", Kind::Lines, &days(30), &series, |v| v.to_string());
        let labels = days(30).iter().filter(|d| svg.contains(&format!(">{d}<"))).count();
        assert!(labels <= MAX_X_LABELS + 1, "{labels} labels");
        let empty = chart("Nothing", Kind::StackedBars, &days(1), &[], |v| v.to_string());
        assert!(elements(&empty).iter().any(|e| e.0 == "svg"));
    }
}
