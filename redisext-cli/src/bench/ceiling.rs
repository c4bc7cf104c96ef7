//! The server's ceiling: what `redis-benchmark` gets out of the same server for
//! `EVALSHA <counter/incr> 1 key 1 ""`, with its own event loop and no client
//! library in the way. It runs inside the rounds, as one more turn of every
//! `counter.incr` cell it bounds, so that it shares the library's noise.

use std::process::Command;

use super::report::CeilingRun;
use super::{Mode, Operation, Settings};
use redisext::connection::{Address, Dsn};

/// The `redis-benchmark` shape (connections `-c`, depth `-P`) that bounds the
/// library's `op` in `mode`: one connection pipelining `depth` for a pipelined
/// cell, `clients` connections one request at a time for a contended one (so the
/// 1-client cell is compared with `-c 1 -P 1`, and so is the pipeline of 1). Only
/// `counter.incr` has a ceiling; the timed single-attempt cell has none (its
/// per-attempt clock reads are not in redis-benchmark's figure).
pub(crate) fn shape(op: Operation, mode: Mode) -> Option<(usize, usize)> {
    match (op, mode) {
        (Operation::CounterIncr, Mode::Pipelined(depth)) => Some((1, depth)),
        (Operation::CounterIncr, Mode::Contended(clients)) => Some((clients, 1)),
        _ => None,
    }
}

/// Runs `redis-benchmark` against one server.
pub(crate) struct Runner {
    binary: String,
    base: Vec<String>,
    sha1: &'static str,
    key: String,
    requests: usize,
}

impl Runner {
    /// A runner for the server at `dsn`, or why there can be none.
    pub(crate) fn new(dsn: &Dsn, settings: &Settings, prefix: &str) -> Result<Runner, String> {
        let Some(script) = redisext::script::find("counter/incr") else {
            return Err("counter/incr is not bundled".to_owned());
        };
        if dsn.password().is_some() || dsn.username().is_some() {
            // redis-benchmark takes a password only on its command line, where other
            // users of the machine can read it.
            return Err("the server needs a password: redis-benchmark would show it to `ps`".to_owned());
        }
        let mut base = vec!["--dbnum".to_owned(), dsn.db().to_string()];
        match dsn.address() {
            Address::Tcp { host, port } => {
                base.extend(["-h".to_owned(), host.clone(), "-p".to_owned(), port.to_string()])
            }
            Address::Unix(path) => base.extend(["-s".to_owned(), path.display().to_string()]),
            _ => return Err("redis-benchmark is run only over plain TCP or a Unix socket".to_owned()),
        }
        let binary = std::env::var("REDIS_BENCHMARK").unwrap_or_else(|_| "redis-benchmark".to_owned());
        Ok(Runner {
            binary,
            base,
            sha1: script.sha1(),
            key: format!("{prefix}ceiling"),
            requests: settings.ceiling_requests,
        })
    }

    /// The command it sends, for the report.
    pub(crate) fn command(&self) -> String {
        format!("EVALSHA {} 1 <key> 1", self.sha1)
    }

    /// One run of `settings.ceiling_requests` requests over `clients` connections
    /// pipelining `depth`: the requests per second it reports, or why it failed.
    pub(crate) fn run(&self, (clients, depth): (usize, usize)) -> Result<f64, String> {
        let output = Command::new(&self.binary)
            .args(&self.base)
            .args(["-n", &self.requests.to_string(), "-c", &clients.to_string(), "-P", &depth.to_string()])
            .args(["--csv", "EVALSHA", self.sha1, "1", &self.key, "1", ""])
            .output();
        match output {
            Ok(output) if output.status.success() => requests_per_second(&String::from_utf8_lossy(&output.stdout))
                .ok_or_else(|| "redis-benchmark printed no figure".to_owned()),
            Ok(output) => Err(format!("redis-benchmark failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
            Err(error) => Err(format!("{} could not be run: {error}", self.binary)),
        }
    }
}

/// A new, empty run for the cell `mode` with `shape`.
pub(crate) fn empty_run(mode: Mode, (clients, depth): (usize, usize)) -> CeilingRun {
    CeilingRun { mode, clients, depth, per_round: Vec::new() }
}

/// The `rps` column of `redis-benchmark --csv` output (a header row, then one row
/// per test: `"test","rps",…`).
fn requests_per_second(csv: &str) -> Option<f64> {
    let row = csv.lines().map(str::trim).find(|line| !line.is_empty() && !line.starts_with("\"test\""))?;
    row.split("\",\"").nth(1)?.trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rps_column() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"EVALSHA abc 1 k 1\",\"52631.58\",\"0.479\"\n";
        assert_eq!(requests_per_second(csv), Some(52631.58));
        assert_eq!(requests_per_second("\"test\",\"rps\"\n"), None);
    }

    #[test]
    fn each_counter_cell_is_bounded_by_the_same_shape() {
        let incr = Operation::CounterIncr;
        assert_eq!(shape(incr, Mode::Pipelined(64)), Some((1, 64)));
        assert_eq!(shape(incr, Mode::Pipelined(1)), Some((1, 1)));
        // The 1-client cell (one request at a time, no pipeline) has its own
        // ceiling run, not the pipeline of 1's figure.
        assert_eq!(shape(incr, Mode::Contended(1)), Some((1, 1)));
        assert_eq!(shape(incr, Mode::Contended(16)), Some((16, 1)));
        assert_eq!(shape(incr, Mode::Latency), None);
        assert_eq!(shape(Operation::MapGet, Mode::Pipelined(64)), None);
    }
}
