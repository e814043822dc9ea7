//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per metric
//! family, then its samples, label values escaped.
//!
//! Only the writer lives here; what is written is decided by `metrics::Metrics::render`.

use std::fmt::Write;

use super::series::Histogram;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Collects one exposition.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Start a family: its help text and type. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (buckets, count, sum) = h.snapshot();
        for (le, n) in buckets {
            self.out.push_str(name);
            self.out.push_str("_bucket");
            write_labels(&mut self.out, labels, Some(&format_value(le)));
            let _ = writeln!(self.out, " {n}");
        }
        self.out.push_str(name);
        self.out.push_str("_bucket");
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {count}");
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_into(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Label values escape backslash, double quote and line feed; nothing else is special.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whole numbers without a fraction, `+Inf`/`-Inf`/`NaN` as Prometheus spells them.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "A \\ help\nline");
        e.sample("x_total", &[("model", "a\"b\\c\nd"), ("key", "k")], 3.0);
        assert_eq!(
            e.finish(),
            "# HELP x_total A \\\\ help\\nline\n# TYPE x_total counter\n\
             x_total{model=\"a\\\"b\\\\c\\nd\",key=\"k\"} 3\n"
        );
    }

    #[test]
    fn histogram_has_buckets_inf_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(200));
        let mut e = Exposition::default();
        e.histogram("t_seconds", &[("api", "openai")], &h);
        let text = e.finish();
        assert!(text.contains("t_seconds_bucket{api=\"openai\",le=\"0.1\"} 0\n"));
        assert!(text.contains("t_seconds_bucket{api=\"openai\",le=\"0.25\"} 1\n"));
        assert!(text.contains("t_seconds_bucket{api=\"openai\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("t_seconds_sum{api=\"openai\"} 0.2\n"));
        assert!(text.contains("t_seconds_count{api=\"openai\"} 1\n"));
    }

    #[test]
    fn values_are_spelled_as_prometheus_reads_them() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
