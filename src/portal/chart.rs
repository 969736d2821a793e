//! Usage trend charts drawn by the server as SVG: one per virtual account
//! and entitlement tag, in use against available over the daily history,
//! so an operator sees where usage is heading against what is owned. No
//! script and no inline style: the strict Content-Security-Policy holds.

use maud::{html, Markup, PreEscaped};

/// One day of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub day: String,
    pub in_use: i64,
    pub available: i64,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Where each point goes: x by its place in the series, y by its value
/// against the largest value (at least 1, so an all-zero pool draws flat).
fn scale(points: &[Point]) -> (impl Fn(usize) -> f64, impl Fn(i64) -> f64, i64) {
    let top = points
        .iter()
        .flat_map(|p| [p.in_use, p.available])
        .max()
        .unwrap_or(0)
        .max(1);
    let steps = points.len().saturating_sub(1).max(1) as f64;
    let x = move |i: usize| LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / steps;
    let y = move |v: i64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v.max(0) as f64 / top as f64);
    (x, y, top)
}

fn polyline(points: &[Point], value: impl Fn(&Point) -> i64) -> String {
    let (x, y, _) = scale(points);
    points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(value(p))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the chart says, in words (for screen readers and for the title).
pub fn summary(tag: &str, points: &[Point]) -> String {
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            let change = last.in_use - first.in_use;
            format!(
                "{tag}: {} in use of {} owned on {}; {}{} since {}",
                last.in_use,
                last.available,
                last.day,
                if change >= 0 { "+" } else { "" },
                change,
                first.day
            )
        }
        _ => format!("{tag}: no usage history yet"),
    }
}

/// The chart of one pool over its history (oldest first).
pub fn trend(tag: &str, points: &[Point]) -> Markup {
    let label = summary(tag, points);
    if points.is_empty() {
        return html! { p.empty { (label) } };
    }
    // One day of history draws as a flat line across the plot, not a dot.
    let single;
    let points = if points.len() == 1 {
        single = [points[0].clone(), points[0].clone()];
        &single[..]
    } else {
        points
    };
    let (x, y, top) = scale(points);
    let short: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            p.in_use > p.available && points.get(i + 1).is_none_or(|next| next.day != p.day)
        })
        .map(|(i, p)| (x(i), y(p.in_use)))
        .collect();
    let view = format!("0 0 {WIDTH} {HEIGHT}");
    let base = HEIGHT - BOTTOM;
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(view) role="img" aria-label=(label) {
                title { (label) }
                line.axis x1=(LEFT) y1=(base) x2=(WIDTH - RIGHT) y2=(base) {}
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(base) {}
                text.tick x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (top) }
                text.tick x=(LEFT - 6.0) y=(base) text-anchor="end" { "0" }
                text.tick x=(LEFT) y=(HEIGHT - 8.0) { (points[0].day) }
                @if points[0].day != points[points.len() - 1].day {
                    text.tick x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (points[points.len() - 1].day) }
                }
                polyline.available points=(polyline(points, |p| p.available)) {}
                polyline.in-use points=(polyline(points, |p| p.in_use)) {}
                @for (cx, cy) in &short {
                    circle.short cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}")) r="3" {}
                }
            }
            figcaption {
                span.key.in-use { "in use" } " "
                span.key.available { "owned" } " "
                @if !short.is_empty() { span.key.short { "short" } " " }
                (PreEscaped("&middot; ")) (label)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(day: &str, in_use: i64, available: i64) -> Point {
        Point {
            day: day.into(),
            in_use,
            available,
        }
    }

    #[test]
    fn points_span_the_plot_and_the_largest_value_reaches_the_top() {
        let points = [p("2026-11-01", 0, 5), p("2026-11-02", 10, 5)];
        assert_eq!(
            polyline(&points, |p| p.in_use),
            format!(
                "{LEFT:.1},{:.1} {:.1},{TOP:.1}",
                HEIGHT - BOTTOM,
                WIDTH - RIGHT
            )
        );
        assert_eq!(
            polyline(&points, |p| p.available),
            format!(
                "{LEFT:.1},{y:.1} {:.1},{y:.1}",
                WIDTH - RIGHT,
                y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0
            )
        );
    }

    #[test]
    fn shortfall_days_are_marked_and_summarised() {
        let points = [p("2026-11-01", 3, 5), p("2026-11-02", 7, 5)];
        let svg = trend("ESS", &points).into_string();
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(svg.contains("ESS: 7 in use of 5 owned on 2026-11-02; +4 since 2026-11-01"));
        assert!(
            !svg.contains("style="),
            "inline style breaks the CSP: {svg}"
        );
    }

    #[test]
    fn a_single_or_empty_or_zero_history_draws_without_dividing_by_zero() {
        let one = trend("T", &[p("2026-11-01", 0, 0)]).into_string();
        assert!(!one.contains("NaN") && !one.contains("inf"), "{one}");
        assert!(trend("T", &[])
            .into_string()
            .contains("no usage history yet"));
    }

    #[test]
    fn device_text_is_escaped() {
        let svg = trend("<script>", &[p("d", 1, 1)]).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
    }
}
