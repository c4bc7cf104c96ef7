//! The server's ceiling: what `redis-benchmark` gets out of the same server for
//! `EVALSHA <counter/incr> 1 key 1 ""`, with its own event loop and no client
//! library in the way.

use std::process::Command;

use super::Settings;
use super::report::{Ceiling, CeilingRun};
use redisext::connection::{Address, Dsn};

/// Runs `redis-benchmark` once per pipeline depth (one connection) and once per
/// client count (no pipelining), or says why it could not.
pub(crate) fn measure(dsn: &Dsn, settings: &Settings, prefix: &str) -> Ceiling {
    let Some(script) = redisext::script::find("counter/incr") else {
        return Ceiling::Skipped("counter/incr is not bundled".to_owned());
    };
    if dsn.password().is_some() || dsn.username().is_some() {
        // redis-benchmark takes a password only on its command line, where other
        // users of the machine can read it.
        return Ceiling::Skipped("the server needs a password: redis-benchmark would show it to `ps`".to_owned());
    }
    let mut base = vec!["--dbnum".to_owned(), dsn.db().to_string()];
    match dsn.address() {
        Address::Tcp { host, port } => base.extend(["-h".to_owned(), host.clone(), "-p".to_owned(), port.to_string()]),
        Address::Unix(path) => base.extend(["-s".to_owned(), path.display().to_string()]),
        _ => return Ceiling::Skipped("redis-benchmark is run only over plain TCP or a Unix socket".to_owned()),
    }
    let binary = std::env::var("REDIS_BENCHMARK").unwrap_or_else(|_| "redis-benchmark".to_owned());
    let key = format!("{prefix}ceiling");
    let shapes = settings
        .depths
        .iter()
        .map(|&depth| (1, depth))
        .chain(settings.clients.iter().filter(|&&c| c > 1).map(|&c| (c, 1)));
    let mut runs = Vec::new();
    for (clients, depth) in shapes {
        let output = Command::new(&binary)
            .args(&base)
            .args(["-n", &settings.ceiling_requests.to_string(), "-c", &clients.to_string(), "-P", &depth.to_string()])
            .args(["--csv", "EVALSHA", script.sha1(), "1", &key, "1", ""])
            .output();
        let output = match output {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                return Ceiling::Skipped(format!(
                    "redis-benchmark failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            Err(error) => return Ceiling::Skipped(format!("{binary} could not be run: {error}")),
        };
        match requests_per_second(&String::from_utf8_lossy(&output.stdout)) {
            Some(per_second) => runs.push(CeilingRun { clients, depth, per_second }),
            None => return Ceiling::Skipped("redis-benchmark printed no figure".to_owned()),
        }
    }
    Ceiling::Measured { command: format!("EVALSHA {} 1 <key> 1", script.sha1()), runs }
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
}
