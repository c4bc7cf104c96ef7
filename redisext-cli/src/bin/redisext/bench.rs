//! `redisext bench`: what atomicity costs on your server — the library's script
//! path against hand-written EVALSHA, Python redisext's plain commands and
//! WATCH/MULTI/EXEC transactions. The engine is `redisext_cli::bench`,
//! the same one `cargo bench` runs.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use redisext_cli::bench::{self, Operation, ProgressBar, Settings};

use crate::nodes::resolve_url;
use crate::{Failure, Outcome, output};

/// Options of `redisext bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The server, as a DSN (redis://[user:password@]host[:port][/db] or
    /// unix:///path.sock[?db=N]). Without it, REDISEXT_URL, then REDIS_URL.
    /// The run adds load: do not point it at a busy production server.
    #[arg(long, value_name = "URL", verbatim_doc_comment)]
    url: Option<String>,
    /// Rounds: every path of every measurement runs once per round, in turn
    /// (default 5; 1 with --quick).
    #[arg(long, value_name = "N", verbatim_doc_comment)]
    rounds: Option<usize>,
    /// Multiply the attempts of every measurement: 4 gives steadier figures in
    /// about four times the time.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, verbatim_doc_comment)]
    scale: f64,
    /// A run of a few seconds, one round of few attempts: to try the tool. Its
    /// figures mean little.
    #[arg(long, verbatim_doc_comment)]
    quick: bool,
    /// Only these operations (comma-separated): counter.incr, map.get, map.set,
    /// priority_queue.push, priority_queue.pop, lock.acquire_release,
    /// resource_pool.checkout_checkin, bounded_queue.push.
    #[arg(long, value_name = "OPS", value_delimiter = ',', verbatim_doc_comment)]
    only: Vec<String>,
    /// Client counts of the contended measurements.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = Settings::default().clients)]
    clients: Vec<usize>,
    /// Pipeline depths.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = Settings::default().depths)]
    depths: Vec<usize>,
    /// Where to write every figure as JSON.
    #[arg(long, value_name = "FILE", default_value = "redisext-bench.json")]
    json: PathBuf,
    /// Where to write the chart (SVG).
    #[arg(long, value_name = "FILE.svg", default_value = "redisext-bench.svg")]
    chart: PathBuf,
    /// Do not run redis-benchmark for the server's ceiling.
    #[arg(long)]
    no_ceiling: bool,
    /// No progress bar on standard error.
    #[arg(long)]
    no_progress: bool,
    /// How to print the tables.
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    format: TableFormat,
}

/// How the summary tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TableFormat {
    /// Aligned columns.
    Text,
    /// Markdown tables (for a README).
    Markdown,
}

impl BenchArgs {
    fn settings(&self) -> Result<Settings, Failure> {
        let mut settings = if self.quick { Settings::quick() } else { Settings::default() };
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Failure::usage(format!("--scale {} is not a positive number", self.scale)));
        }
        settings = settings.scaled(self.scale);
        if let Some(rounds) = self.rounds {
            settings.rounds = rounds;
        }
        settings.clients.clone_from(&self.clients);
        settings.depths.clone_from(&self.depths);
        if !self.only.is_empty() {
            settings.operations = self
                .only
                .iter()
                .map(|name| {
                    Operation::from_name(name.trim()).ok_or_else(|| {
                        let known: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
                        Failure::usage(format!("no operation {name:?}; known: {}", known.join(", ")))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if self.no_ceiling {
            settings.ceiling_requests = 0;
        }
        settings.check().map_err(|error| Failure::usage(error.to_string()))?;
        Ok(settings)
    }
}

/// Checks that `path`'s directory exists, before a long run that would then fail
/// to write there.
fn writable(path: &Path, what: &str) -> Result<(), Failure> {
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if directory.is_dir() {
        Ok(())
    } else {
        Err(Failure::usage(format!("{what} {}: no directory {}", path.display(), directory.display())))
    }
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|error| Failure::usage(format!("cannot write {}: {error}", path.display())))
}

/// Runs the benchmark: progress on standard error, the tables and targets on
/// standard output, the JSON and the chart to their files. Invariant violations
/// on the script paths are a failed check (status 1).
pub(crate) fn run(args: BenchArgs) -> Result<Outcome, Failure> {
    let settings = args.settings()?;
    if args.chart.extension().and_then(|e| e.to_str()).is_none_or(|e| !e.eq_ignore_ascii_case("svg")) {
        return Err(Failure::usage(format!(
            "--chart {}: only SVG charts are written (FILE.svg)",
            args.chart.display()
        )));
    }
    writable(&args.json, "--json")?;
    writable(&args.chart, "--chart")?;
    let dsn = resolve_url(args.url.as_deref())?;
    let mut bar = (!args.no_progress).then(ProgressBar::new);
    let report = bench::run(&dsn, &settings, &mut |progress| {
        if let Some(bar) = bar.as_mut() {
            bar.show(progress);
        }
    });
    if let Some(bar) = bar.as_mut() {
        bar.finish();
    }
    let report = report.map_err(|error| match error {
        bench::BenchError::Settings(reason) => Failure::usage(reason),
        error => Failure::server(format!("{dsn}: {error}")),
    })?;
    let tables = match args.format {
        TableFormat::Text => report.tables(),
        TableFormat::Markdown => {
            let mut text: String = report.table_list().iter().map(|table| table.markdown() + "\n").collect();
            text.push_str(&report.targets_text());
            text
        }
    };
    output::print(&tables)?;
    write(&args.json, &output::json(&report.json()))?;
    write(&args.chart, &report.svg())?;
    output::print(&format!("\nwrote {} and {}\n", args.json.display(), args.chart.display()))?;
    if report.script_violations() > 0 {
        eprintln!("redisext: {} invariant violations on the script paths", report.script_violations());
        return Ok(Outcome::ChecksFailed);
    }
    Ok(Outcome::Passed)
}
