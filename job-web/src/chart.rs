//! The throughput chart: an SVG drawn on the server, so the page needs no script.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jobsmith_runtime::MinuteStats;
use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 24.0;
const MINUTES: i64 = 60;

/// The 60 minutes up to and including `now`'s, oldest first, with zeros where the engine had no
/// row (engines may leave quiet minutes out).
pub(crate) fn last_hour(now: DateTime<Utc>, stats: &[MinuteStats]) -> Vec<MinuteStats> {
    let minute_of = |t: DateTime<Utc>| t.timestamp().div_euclid(60);
    let mut by_minute: HashMap<i64, (i64, i64)> = HashMap::new();
    for s in stats {
        let slot = by_minute.entry(minute_of(s.minute)).or_default();
        slot.0 += s.completed;
        slot.1 += s.failed;
    }
    let last = minute_of(now);
    (last - MINUTES + 1..=last)
        .map(|m| {
            let (completed, failed) = by_minute.get(&m).copied().unwrap_or_default();
            MinuteStats { minute: DateTime::from_timestamp(m * 60, 0).unwrap_or(now), completed, failed }
        })
        .collect()
}

/// A line's colour, class and the count it draws.
type Series = (&'static str, &'static str, fn(&MinuteStats) -> i64);

/// A line chart of completed and failed per minute.
pub(crate) fn svg(minutes: &[MinuteStats]) -> Markup {
    let peak = minutes.iter().map(|m| m.completed.max(m.failed)).max().unwrap_or(0);
    let top = nice_ceiling(peak);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / (minutes.len().max(2) - 1) as f64;
    let x = |i: usize| LEFT + i as f64 * step;
    let y = |v: i64| TOP + plot_h - (v as f64 / top as f64) * plot_h;
    let one = |v: f64| format!("{v:.1}");
    let last = minutes.len().saturating_sub(1);
    let lx = WIDTH - RIGHT - 150.0;
    let series: [Series; 2] =
        [("#2e9d58", "completed", |m| m.completed), ("#c83a3a", "failed", |m| m.failed)];
    html! {
        svg id="throughput" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%"
            style={ "max-width:" (WIDTH) "px;background:#fff;border:1px solid #e3e6eb" }
            role="img" aria-label="Completed and failed jobs per minute over the last hour"
            xmlns="http://www.w3.org/2000/svg" {
            // Horizontal grid with the scale.
            @for frac in [0.0, 0.5, 1.0] {
                @let value = (top as f64 * frac).round() as i64;
                @let gy = y(value);
                line x1=(LEFT) x2=(one(WIDTH - RIGHT)) y1=(one(gy)) y2=(one(gy)) stroke="#e3e6eb" {}
                text x=(one(LEFT - 6.0)) y=(one(gy + 4.0)) text-anchor="end" { (value) }
            }
            // Time labels every quarter hour; the last ends at its point so it stays inside.
            @for (i, m) in minutes.iter().enumerate().filter(|(i, _)| i % 15 == 0 || *i == last) {
                text x=(one(x(i))) y=(one(HEIGHT - 6.0)) text-anchor=(if i == last { "end" } else { "middle" }) {
                    (m.minute.format("%H:%M"))
                }
            }
            @for (color, label, pick) in series {
                @let points: Vec<String> =
                    minutes.iter().enumerate().map(|(i, m)| format!("{:.1},{:.1}", x(i), y(pick(m)))).collect();
                polyline class=(label) fill="none" stroke=(color) stroke-width="2" points=(points.join(" ")) {}
            }
            // Hover targets: one column per minute with its numbers as a tooltip.
            @for (i, m) in minutes.iter().enumerate() {
                rect x=(one(x(i) - step / 2.0)) y=(TOP) width=(one(step)) height=(one(plot_h)) fill="transparent" {
                    title { (m.minute.format("%H:%M")) " UTC: " (m.completed) " completed, " (m.failed) " failed" }
                }
            }
            g {
                rect x=(one(lx)) y="6" width="10" height="10" fill="#2e9d58" {}
                text x=(one(lx + 14.0)) y="15" { "completed" }
                rect x=(one(lx + 90.0)) y="6" width="10" height="10" fill="#c83a3a" {}
                text x=(one(lx + 104.0)) y="15" { "failed" }
            }
        }
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (at least 1), so the scale reads well.
fn nice_ceiling(v: i64) -> i64 {
    let mut base = 1;
    loop {
        for m in [1, 2, 5] {
            if base * m >= v.max(1) {
                return base * m;
            }
        }
        base *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_hour_with_zeros() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let earlier = DateTime::from_timestamp(1_700_000_000 - 120, 0).unwrap();
        let minutes = last_hour(now, &[MinuteStats { minute: earlier, completed: 3, failed: 1 }]);
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes.iter().map(|m| m.completed).sum::<i64>(), 3);
        assert_eq!(minutes[57].failed, 1);
    }

    #[test]
    fn scales_to_nice_numbers() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(500), 500);
    }

    #[test]
    fn draws_both_series() {
        let now = Utc::now();
        let out = svg(&last_hour(now, &[MinuteStats { minute: now, completed: 7, failed: 2 }])).into_string();
        assert!(out.starts_with("<svg") && out.ends_with("</svg>"));
        assert!(out.contains("class=\"completed\"") && out.contains("class=\"failed\""));
        assert!(out.contains("7 completed, 2 failed"));
    }
}
