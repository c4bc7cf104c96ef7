//! A run's results: medians over rounds, ratios within rounds, the targets, and
//! three renderings — text tables, JSON and an SVG chart.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::environment::Environment;
use super::measure::{Measurement, Sample, median};
use super::{Mode, Operation, Path, Settings};

/// One path of one operation in one mode, summed up over the rounds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Summary {
    /// The operation.
    pub operation: Operation,
    /// How it was measured.
    pub mode: Mode,
    /// How it was run.
    pub path: Path,
    /// Successful operations per second, median over rounds.
    pub per_second: f64,
    /// Median over rounds of the median single-attempt time, µs ([`Mode::Latency`]).
    pub p50_us: Option<f64>,
    /// Median over rounds of the 99th-percentile single-attempt time, µs.
    pub p99_us: Option<f64>,
    /// Attempts that succeeded, as a share of all attempts (all rounds).
    pub success_share: f64,
    /// Aborted transactions retried per successful operation (all rounds).
    pub retries_per_op: f64,
    /// Invariant violations seen (all rounds).
    pub violations: u64,
}

/// The library's throughput divided by another path's, in one cell: the median of
/// the ratios of single rounds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Ratio {
    /// The operation.
    pub operation: Operation,
    /// How it was measured.
    pub mode: Mode,
    /// The path the library is compared with.
    pub versus: Path,
    /// The median of `per_round`.
    pub ratio: f64,
    /// library ÷ other, round by round.
    pub per_round: Vec<f64>,
}

/// One of the issue's targets, and where this run stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// What is wanted.
    pub wanted: String,
    /// What was measured.
    pub measured: String,
    /// Whether this run meets it.
    pub met: bool,
}

/// The server's ceiling as `redis-benchmark` measured it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Ceiling {
    /// The runs, one per shape.
    Measured {
        /// The command it sent.
        command: String,
        /// One per (clients, depth).
        runs: Vec<CeilingRun>,
    },
    /// Not measured, and why.
    Skipped(String),
}

/// `redis-benchmark` in the shape that bounds one `counter.incr` cell, run once
/// per round next to the library's measurement of that cell.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CeilingRun {
    /// The library's cell it bounds.
    pub mode: Mode,
    /// Connections (`-c`).
    pub clients: usize,
    /// Pipeline depth (`-P`).
    pub depth: usize,
    /// Requests per second it reported, round by round (the first is round 1).
    pub per_round: Vec<f64>,
}

impl CeilingRun {
    /// Requests per second, median over rounds.
    pub fn per_second(&self) -> f64 {
        median(self.per_round.iter().copied())
    }
}

/// A text table: a title, a header row and rows of cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// One row of cells per line; numbers are right-aligned.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Aligned columns, two spaces apart, numbers to the right; the title on top.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|cell| cell.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = format!("{}\n", self.title);
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(width - cell.chars().count());
                let numeric = index > 0 && cell.starts_with(|c: char| c.is_ascii_digit() || c == '×' || c == '—');
                if index > 0 {
                    line.push_str("  ");
                }
                if numeric {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// The same table in Markdown (for the README).
    pub fn markdown(&self) -> String {
        let mut text = format!("**{}**\n\n| {} |\n|", self.title, self.header.join(" | "));
        for index in 0..self.header.len() {
            text.push_str(if index == 0 { "---|" } else { "---:|" });
        }
        text.push('\n');
        for row in &self.rows {
            let _ = writeln!(text, "| {} |", row.join(" | "));
        }
        text
    }
}

/// Everything one run measured.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// Where and when.
    pub environment: Environment,
    /// How much was measured.
    pub settings: Settings,
    /// Every path of every cell.
    pub summaries: Vec<Summary>,
    /// library ÷ each other path, in every cell.
    pub ratios: Vec<Ratio>,
    /// The issue's targets.
    pub targets: Vec<Target>,
    /// `redis-benchmark`'s figures for the same server.
    pub ceiling: Ceiling,
    measurements: Vec<Measurement>,
}

/// The contended client count the targets and the chart look at.
const HEADLINE_CLIENTS: usize = 16;
/// library ÷ evalsha must reach this.
const THIN_DISPATCH: f64 = 0.95;
/// library ÷ watch_multi for compound operations under contention must reach this.
const ATOMIC_GAIN: f64 = 2.0;

impl Report {
    pub(crate) fn new(
        environment: Environment,
        settings: Settings,
        measurements: Vec<Measurement>,
        ceiling: Ceiling,
    ) -> Report {
        let summaries = measurements.iter().map(summarize).collect();
        let ratios = ratios(&measurements);
        let mut report =
            Report { environment, settings, summaries, ratios, targets: Vec::new(), ceiling, measurements };
        report.targets = report.judge();
        report
    }

    /// The summary of one path in one cell.
    pub fn summary(&self, operation: Operation, mode: Mode, path: Path) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.operation == operation && s.mode == mode && s.path == path)
    }

    /// The ratio library ÷ `versus` in one cell.
    pub fn ratio(&self, operation: Operation, mode: Mode, versus: Path) -> Option<f64> {
        self.ratios.iter().find(|r| r.operation == operation && r.mode == mode && r.versus == versus).map(|r| r.ratio)
    }

    /// library ÷ ceiling for the cell `run` bounds, round by round (empty when the
    /// library's cell was not measured).
    pub fn library_over_ceiling(&self, run: &CeilingRun) -> Vec<f64> {
        self.measurements
            .iter()
            .find(|m| m.op == Operation::CounterIncr && m.mode == run.mode && m.path == Path::Library)
            .map_or_else(Vec::new, |library| per_round_ratios(&library.samples, &run.per_round))
    }

    /// Invariant violations on the paths that run the bundled scripts: must be 0.
    pub fn script_violations(&self) -> u64 {
        self.summaries.iter().filter(|s| s.path.runs_scripts()).map(|s| s.violations).sum()
    }

    /// The client count the targets and chart use: 16 when measured, else the
    /// largest measured.
    fn headline_clients(&self) -> Option<usize> {
        let clients = &self.settings.clients;
        if clients.contains(&HEADLINE_CLIENTS) { Some(HEADLINE_CLIENTS) } else { clients.iter().copied().max() }
    }

    fn judge(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let thin: Vec<&Ratio> =
            self.ratios.iter().filter(|r| r.versus == Path::Evalsha && r.ratio.is_finite()).collect();
        if let Some(lowest) = thin.iter().min_by(|a, b| a.ratio.total_cmp(&b.ratio)) {
            let below: Vec<String> = thin
                .iter()
                .filter(|r| r.ratio < THIN_DISPATCH)
                .map(|r| format!("{} ({}) {:.2}", r.operation, r.mode, r.ratio))
                .collect();
            targets.push(Target {
                wanted: format!("library ≥ {THIN_DISPATCH} × hand-written EVALSHA, every operation and mode"),
                measured: format!(
                    "{} of {} cells at or above; median {:.3}, lowest {:.3} ({}, {}){}",
                    thin.len() - below.len(),
                    thin.len(),
                    median(thin.iter().map(|r| r.ratio)),
                    lowest.ratio,
                    lowest.operation,
                    lowest.mode,
                    if below.is_empty() { String::new() } else { format!("; below: {}", below.join(", ")) }
                ),
                met: below.is_empty(),
            });
        }
        if let Some(clients) = self.headline_clients() {
            let mode = Mode::Contended(clients);
            let gains: Vec<(Operation, f64)> = self
                .settings
                .operations
                .iter()
                .filter(|op| op.is_compound())
                .filter_map(|&op| self.ratio(op, mode, Path::Optimistic).map(|ratio| (op, ratio)))
                .collect();
            if !gains.is_empty() {
                targets.push(Target {
                    wanted: format!(
                        "compound operations, {clients} clients: library ≥ {ATOMIC_GAIN} × WATCH/MULTI/EXEC successful ops/s"
                    ),
                    measured: gains.iter().map(|(op, ratio)| format!("{op} {ratio:.2}")).collect::<Vec<_>>().join(", "),
                    met: gains.iter().all(|(_, ratio)| *ratio >= ATOMIC_GAIN),
                });
            }
        }
        let plain: u64 = self.summaries.iter().filter(|s| s.path == Path::Plain).map(|s| s.violations).sum();
        let scripts = self.script_violations();
        targets.push(Target {
            wanted: "zero invariant violations on the script paths (library, evalsha)".to_owned(),
            measured: format!("{scripts} on the script paths; {plain} on the plain (Python) path"),
            met: scripts == 0,
        });
        targets
    }

    /// The text tables: single client, pipelined, contended, ratios, ceiling,
    /// targets.
    pub fn tables(&self) -> String {
        let mut text = format!(
            "redisext bench · {} · {} ({} cores, {}) · Redis {} at {} · {}\n\n",
            self.environment.date,
            self.environment.cpu,
            self.environment.cores,
            self.environment.os,
            self.environment.redis_version,
            self.environment.server,
            rounds(self.settings.rounds)
        );
        for table in self.table_list() {
            text.push_str(&table.render());
            text.push('\n');
        }
        text.push_str(&self.targets_text());
        text
    }

    /// The targets, one line each.
    pub fn targets_text(&self) -> String {
        let mut text = "Targets (each a ratio within this run):\n".to_owned();
        for target in &self.targets {
            let verdict = if target.met { "met    " } else { "NOT MET" };
            let _ = writeln!(text, "  [{verdict}] {}: {}", target.wanted, target.measured);
        }
        text
    }

    /// The tables, as data (for Markdown or another layout).
    pub fn table_list(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        let ops: Vec<Operation> = self.settings.operations.clone();
        let paths_of = |op: Operation, mode: Mode| -> Vec<Path> {
            op.paths().iter().copied().filter(|&path| self.summary(op, mode, path).is_some()).collect()
        };

        let mut rows = Vec::new();
        for &op in &ops {
            for path in paths_of(op, Mode::Latency) {
                let Some(s) = self.summary(op, Mode::Latency, path) else { continue };
                rows.push(vec![
                    op.name().to_owned(),
                    path.name().to_owned(),
                    s.p50_us.map_or_else(dash, |us| format!("{us:.1}")),
                    s.p99_us.map_or_else(dash, |us| format!("{us:.1}")),
                    rate(s.per_second),
                ]);
            }
        }
        tables.push(Table {
            title: "Single client, one attempt at a time".to_owned(),
            header: strings(&["operation", "path", "p50 µs", "p99 µs", "ops/s"]),
            rows,
        });

        let depths = &self.settings.depths;
        let mut rows = Vec::new();
        for &op in &ops {
            let Some(&first) = depths.first() else { break };
            for path in paths_of(op, Mode::Pipelined(first)) {
                let mut row = vec![op.name().to_owned(), path.name().to_owned()];
                for &depth in depths {
                    row.push(self.summary(op, Mode::Pipelined(depth), path).map_or_else(dash, |s| rate(s.per_second)));
                }
                rows.push(row);
            }
        }
        if !rows.is_empty() {
            let mut header = strings(&["operation", "path"]);
            header.extend(depths.iter().map(|depth| format!("depth {depth}")));
            tables.push(Table { title: "Pipelined, one client: ops/s".to_owned(), header, rows });
        }

        let clients = &self.settings.clients;
        let headline = self.headline_clients().unwrap_or(1);
        let mut rows = Vec::new();
        for &op in &ops {
            for path in paths_of(op, Mode::Contended(headline)) {
                let mut row = vec![op.name().to_owned(), path.name().to_owned()];
                for &count in clients {
                    row.push(self.summary(op, Mode::Contended(count), path).map_or_else(dash, |s| rate(s.per_second)));
                }
                let headline_summary = self.summary(op, Mode::Contended(headline), path);
                row.push(headline_summary.map_or_else(dash, |s| format!("{:.0}%", s.success_share * 100.0)));
                row.push(if path == Path::Optimistic {
                    headline_summary.map_or_else(dash, |s| format!("{:.2}", s.retries_per_op))
                } else {
                    dash()
                });
                let violations: u64 = clients
                    .iter()
                    .filter_map(|&count| self.summary(op, Mode::Contended(count), path))
                    .map(|s| s.violations)
                    .sum();
                row.push(violations.to_string());
                rows.push(row);
            }
        }
        let mut header = strings(&["operation", "path"]);
        header.extend(clients.iter().map(|count| format!("{count} cl.")));
        header.extend([format!("done @{headline}"), format!("retries/op @{headline}"), "violations".to_owned()]);
        tables.push(Table { title: "Contended: clients on the same keys, successful ops/s".to_owned(), header, rows });

        let mut rows = Vec::new();
        for &op in &ops {
            let modes = std::iter::once(Mode::Latency)
                .chain(depths.iter().map(|&d| Mode::Pipelined(d)))
                .chain(clients.iter().map(|&c| Mode::Contended(c)));
            for mode in modes {
                if self.summary(op, mode, Path::Library).is_none() {
                    continue;
                }
                let cell = |versus| self.ratio(op, mode, versus).map_or_else(dash, |r| format!("{r:.2}"));
                rows.push(vec![
                    op.name().to_owned(),
                    mode.to_string(),
                    cell(Path::Evalsha),
                    cell(Path::Plain),
                    cell(Path::Optimistic),
                ]);
            }
        }
        tables.push(Table {
            title: "Ratios: library ÷ other path, median of per-round ratios".to_owned(),
            header: strings(&["operation", "mode", "÷ evalsha", "÷ plain", "÷ watch_multi"]),
            rows,
        });

        if let Ceiling::Measured { command, runs } = &self.ceiling {
            let rows = runs
                .iter()
                .map(|run| {
                    let library = self.summary(Operation::CounterIncr, run.mode, Path::Library).map(|s| s.per_second);
                    let ratio = self.library_over_ceiling(run);
                    vec![
                        run.mode.to_string(),
                        run.clients.to_string(),
                        run.depth.to_string(),
                        rate(run.per_second()),
                        library.map_or_else(dash, rate),
                        if ratio.is_empty() { dash() } else { format!("{:.2}", median(ratio)) },
                    ]
                })
                .collect();
            tables.push(Table {
                title: format!(
                    "Server ceiling: redis-benchmark -c <clients> -P <depth> {command}, run in every round next to the library's counter.incr; ratio: median of per-round ratios"
                ),
                header: strings(&["library cell", "-c", "-P", "ceiling ops/s", "library ops/s", "library ÷ ceiling"]),
                rows,
            });
        }
        tables
    }

    /// Everything, as JSON: environment, settings, per-round samples, summaries,
    /// ratios, targets and ceiling.
    pub fn json(&self) -> Value {
        let mode_json = |mode: Mode| match mode {
            Mode::Latency => json!({"kind": "latency"}),
            Mode::Pipelined(depth) => json!({"kind": "pipelined", "depth": depth}),
            Mode::Contended(clients) => json!({"kind": "contended", "clients": clients}),
        };
        let sample_json = |sample: &Sample| {
            json!({
                "round": sample.round,
                "attempts": sample.attempts,
                "done": sample.done,
                "retries": sample.retries,
                "violations": sample.violations,
                "seconds": sample.seconds,
                "per_second": sample.per_second(),
                "p50_us": sample.latency_us.map(|(p50, _)| p50),
                "p99_us": sample.latency_us.map(|(_, p99)| p99),
            })
        };
        let results: Vec<Value> = self
            .measurements
            .iter()
            .zip(&self.summaries)
            .map(|(measurement, summary)| {
                json!({
                    "operation": summary.operation.name(),
                    "path": summary.path.name(),
                    "mode": mode_json(summary.mode),
                    "commands": summary.operation.commands(summary.path),
                    "per_second": finite(summary.per_second),
                    "p50_us": summary.p50_us,
                    "p99_us": summary.p99_us,
                    "success_share": finite(summary.success_share),
                    "retries_per_op": finite(summary.retries_per_op),
                    "violations": summary.violations,
                    "rounds": measurement.samples.iter().map(sample_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let ratios: Vec<Value> = self
            .ratios
            .iter()
            .map(|ratio| {
                json!({
                    "operation": ratio.operation.name(),
                    "mode": mode_json(ratio.mode),
                    "library_over": ratio.versus.name(),
                    "ratio": finite(ratio.ratio),
                    "per_round": ratio.per_round.iter().copied().map(finite).collect::<Vec<_>>(),
                })
            })
            .collect();
        let ceiling = match &self.ceiling {
            Ceiling::Measured { command, runs } => json!({
                "command": command,
                "runs": runs.iter().map(|run| {
                    let ratios = self.library_over_ceiling(run);
                    json!({
                        "mode": mode_json(run.mode),
                        "clients": run.clients,
                        "depth": run.depth,
                        "per_second": finite(run.per_second()),
                        "per_round": run.per_round.iter().copied().map(finite).collect::<Vec<_>>(),
                        "library_over_ceiling": if ratios.is_empty() { Value::Null } else { finite(median(ratios.iter().copied())) },
                        "library_over_ceiling_per_round": ratios.into_iter().map(finite).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            }),
            Ceiling::Skipped(reason) => json!({"skipped": reason}),
        };
        let environment = &self.environment;
        let settings = &self.settings;
        json!({
            "tool": "redisext bench",
            "environment": {
                "date": environment.date,
                "cpu": environment.cpu,
                "cores": environment.cores,
                "os": environment.os,
                "redis_version": environment.redis_version,
                "server": environment.server,
                "build": environment.build,
                "library_version": environment.library_version,
            },
            "settings": {
                "rounds": settings.rounds,
                "latency_attempts": settings.latency_attempts,
                "pipelined_attempts": settings.pipelined_attempts,
                "contended_attempts": settings.contended_attempts,
                "depths": settings.depths,
                "clients": settings.clients,
                "operations": settings.operations.iter().map(|op| op.name()).collect::<Vec<_>>(),
                "ceiling_requests": settings.ceiling_requests,
            },
            "results": results,
            "ratios": ratios,
            "targets": self.targets.iter().map(|t| json!({"wanted": t.wanted, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
            "script_violations": self.script_violations(),
            "ceiling": ceiling,
        })
    }

    /// A bar chart of throughput per operation and path: one client at a time,
    /// and the headline contended client count. Plain SVG, no scripts or fonts.
    pub fn svg(&self) -> String {
        let mut panels = vec![(Mode::Latency, "One client, one attempt at a time: ops/s".to_owned())];
        if let Some(clients) = self.headline_clients() {
            panels.push((Mode::Contended(clients), format!("{clients} clients on the same keys: successful ops/s")));
        }
        svg_chart(self, &panels)
    }
}

fn summarize(measurement: &Measurement) -> Summary {
    let samples = &measurement.samples;
    let (attempts, done, retries): (u64, u64, u64) =
        samples.iter().fold((0, 0, 0), |(a, d, r), s| (a + s.attempts, d + s.done, r + s.retries));
    let latency = |pick: fn((f64, f64)) -> f64| {
        let values: Vec<f64> = samples.iter().filter_map(|s| s.latency_us.map(pick)).collect();
        (!values.is_empty()).then(|| median(values))
    };
    Summary {
        operation: measurement.op,
        mode: measurement.mode,
        path: measurement.path,
        per_second: median(samples.iter().map(Sample::per_second)),
        p50_us: latency(|(p50, _)| p50),
        p99_us: latency(|(_, p99)| p99),
        success_share: if attempts == 0 { 0.0 } else { done as f64 / attempts as f64 },
        retries_per_op: if done == 0 { retries as f64 } else { retries as f64 / done as f64 },
        violations: samples.iter().map(|s| s.violations).sum(),
    }
}

/// library ÷ every other path of the same cell, round by round.
fn ratios(measurements: &[Measurement]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for library in measurements.iter().filter(|m| m.path == Path::Library) {
        for other in
            measurements.iter().filter(|m| m.op == library.op && m.mode == library.mode && m.path != Path::Library)
        {
            let per_round: Vec<f64> = library
                .samples
                .iter()
                .zip(&other.samples)
                .map(|(mine, theirs)| mine.per_second() / theirs.per_second())
                .collect();
            ratios.push(Ratio {
                operation: library.op,
                mode: library.mode,
                versus: other.path,
                ratio: median(per_round.iter().copied()),
                per_round,
            });
        }
    }
    ratios
}

/// A path's samples ÷ another figure of the same rounds (`per_round[0]` is round
/// 1), round by round; rounds the other has no figure for are left out.
fn per_round_ratios(samples: &[Sample], per_round: &[f64]) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|sample| Some(sample.per_second() / per_round.get(sample.round.checked_sub(1)?)?))
        .collect()
}

/// `1 round`, `5 rounds`.
fn rounds(count: usize) -> String {
    if count == 1 { "1 round".to_owned() } else { format!("{count} rounds") }
}

fn dash() -> String {
    "—".to_owned()
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|cell| (*cell).to_owned()).collect()
}

/// JSON has no infinity or NaN: those become null.
fn finite(value: f64) -> Value {
    if value.is_finite() { json!(value) } else { Value::Null }
}

/// Operations per second with thousands separated by commas.
pub(crate) fn rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return dash();
    }
    let digits = format!("{:.0}", per_second.max(0.0));
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// The color of a path's bars.
fn color(path: Path) -> &'static str {
    match path {
        Path::Library => "#1f5fa8",
        Path::Evalsha => "#7fb3e6",
        Path::Plain => "#e07b24",
        Path::Optimistic => "#8a8f98",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Horizontal grouped bars: per panel, per operation, one bar per path.
fn svg_chart(report: &Report, panels: &[(Mode, String)]) -> String {
    const WIDTH: f64 = 900.0;
    const LABEL: f64 = 230.0;
    const BARS: f64 = 500.0;
    const ROW: f64 = 15.0;
    let environment = &report.environment;
    let mut body = String::new();
    let mut y = 70.0;
    for (mode, title) in panels {
        let _ = writeln!(body, r#"<text x="10" y="{y}" font-weight="bold">{}</text>"#, escape(title));
        y += 12.0;
        let rows: Vec<(Operation, Vec<&Summary>)> = report
            .settings
            .operations
            .iter()
            .map(|&op| (op, op.paths().iter().filter_map(|&path| report.summary(op, *mode, path)).collect()))
            .collect();
        let longest =
            rows.iter().flat_map(|(_, s)| s.iter().map(|s| s.per_second)).filter(|v| v.is_finite()).fold(0.0, f64::max);
        for (op, summaries) in rows {
            if summaries.is_empty() {
                continue;
            }
            y += 6.0;
            let group_middle = y + ROW * summaries.len() as f64 / 2.0 + 4.0;
            let _ = writeln!(
                body,
                r#"<text x="{}" y="{group_middle}" text-anchor="end">{}</text>"#,
                LABEL - 10.0,
                escape(op.name())
            );
            for summary in summaries {
                let width = if longest > 0.0 && summary.per_second.is_finite() {
                    summary.per_second / longest * BARS
                } else {
                    0.0
                };
                let _ = writeln!(
                    body,
                    r#"<rect x="{LABEL}" y="{y}" width="{width:.1}" height="{}" fill="{}"><title>{} {}: {} ops/s</title></rect>"#,
                    ROW - 3.0,
                    color(summary.path),
                    escape(op.name()),
                    summary.path.name(),
                    rate(summary.per_second)
                );
                let mut label = rate(summary.per_second);
                if summary.violations > 0 {
                    label.push_str(&format!(" — {} violations", summary.violations));
                }
                let fill = if summary.violations > 0 { "#c0392b" } else { "#333" };
                let _ = writeln!(
                    body,
                    r#"<text x="{:.1}" y="{}" fill="{fill}" font-size="11">{}</text>"#,
                    LABEL + width + 4.0,
                    y + ROW - 5.0,
                    escape(&label)
                );
                y += ROW;
            }
        }
        y += 28.0;
    }
    let mut legend = String::new();
    for (index, path) in Path::ALL.iter().enumerate() {
        let x = 10.0 + index as f64 * 200.0;
        let _ = write!(
            legend,
            r#"<rect x="{x}" y="38" width="12" height="12" fill="{}"/><text x="{}" y="48">{}</text>"#,
            color(*path),
            x + 17.0,
            match path {
                Path::Library => "library (model method)",
                Path::Evalsha => "EVALSHA by hand",
                Path::Plain => "plain commands (Python)",
                Path::Optimistic => "WATCH/MULTI/EXEC",
            }
        );
    }
    let heading = format!(
        "redisext bench · {} · {} cores ({}) · Redis {} · medians of {}",
        environment.date,
        environment.cores,
        environment.cpu,
        environment.redis_version,
        rounds(report.settings.rounds)
    );
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
            "\n",
            r#"<rect width="100%" height="100%" fill="white"/>"#,
            "\n",
            r#"<text x="10" y="22" font-size="14" font-weight="bold">{heading}</text>"#,
            "\n{legend}\n{body}</svg>\n"
        ),
        w = WIDTH,
        h = y,
        heading = escape(&heading),
        legend = legend,
        body = body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_grouped_and_tables_align_numbers_right() {
        assert_eq!(rate(1234567.4), "1,234,567");
        assert_eq!(rate(999.0), "999");
        assert_eq!(rate(f64::NAN), "—");
        let table = Table {
            title: "T".into(),
            header: strings(&["op", "ops/s"]),
            rows: vec![strings(&["counter.incr", "1,000"]), strings(&["a", "12"])],
        };
        assert_eq!(table.render(), "T\nop            ops/s\ncounter.incr  1,000\na                12\n");
        assert!(table.markdown().contains("|---|---:|"));
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn the_ceiling_ratio_is_the_median_of_rounds_measured_back_to_back() {
        let sample = |round: usize, done: u64| Sample {
            round,
            attempts: done,
            done,
            retries: 0,
            violations: 0,
            seconds: 1.0,
            latency_us: None,
        };
        // Rounds 0.5, 0.9 and 0.8: the median ratio is 0.8, while the ratio of
        // the medians (90 ÷ 100) would say 0.9.
        let library = [sample(1, 50), sample(2, 90), sample(3, 160)];
        let ceiling = [100.0, 100.0, 200.0];
        let ratios = per_round_ratios(&library, &ceiling);
        assert_eq!(ratios, [0.5, 0.9, 0.8]);
        assert_eq!(median(ratios), 0.8);
        // A round without a ceiling figure is left out, not paired with another.
        assert_eq!(per_round_ratios(&library, &ceiling[..2]), [0.5, 0.9]);
        let run = CeilingRun { mode: Mode::Contended(1), clients: 1, depth: 1, per_round: ceiling.to_vec() };
        assert_eq!(run.per_second(), 100.0);
    }
}
