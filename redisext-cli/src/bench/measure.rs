//! Running the measurements: every (operation, mode) cell, round after round, the
//! paths in turn (each round starting one path further on, so that no path is
//! always first), and `redis-benchmark`'s ceiling as one more turn of the cells
//! it bounds.

use std::fmt;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::ceiling;
use super::ops::{self, Attempt, Shared, Target, Worker};
use super::report::{Ceiling, CeilingRun};
use super::{BenchError, Mode, Operation, Path, Progress, Settings, base_key, setup_client};
use redisext::connection::Dsn;

/// The scripts the `evalsha` path sends: loaded before the run, as a user of
/// hand-written `EVALSHA` would (the library loads its own on `NOSCRIPT`).
const HAND_SENT: [&str; 11] = [
    "counter/incr",
    "map/get",
    "map/set",
    "priority_queue/push",
    "priority_queue/pop",
    "lock/acquire",
    "lock/release",
    "resource_pool/checkout",
    "resource_pool/checkin",
    "bounded_queue/push",
    "resource_pool/add",
];

/// With `until_done`, the most attempts a client makes per success it wants.
const MAX_TRIES_PER_SUCCESS: u64 = 100_000;

/// One measurement: one path in one round.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    /// The round, from 1.
    pub(crate) round: usize,
    /// Attempts made by all clients.
    pub(crate) attempts: u64,
    /// Attempts that did what they were for.
    pub(crate) done: u64,
    /// Aborted transactions retried (WATCH/MULTI only).
    pub(crate) retries: u64,
    /// Invariant violations seen.
    pub(crate) violations: u64,
    /// Wall time from the first attempt to the last reply.
    pub(crate) seconds: f64,
    /// Median and 99th percentile of single attempts, in microseconds
    /// ([`Mode::Latency`] only).
    pub(crate) latency_us: Option<(f64, f64)>,
}

impl Sample {
    /// Successful operations per second.
    pub(crate) fn per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.done as f64 / self.seconds } else { 0.0 }
    }
}

/// Every round of one path in one cell.
#[derive(Clone, Debug)]
pub(crate) struct Measurement {
    pub(crate) op: Operation,
    pub(crate) mode: Mode,
    pub(crate) path: Path,
    pub(crate) samples: Vec<Sample>,
}

/// Runs every cell of `settings` on the server at `dsn`, with keys under `prefix`.
/// With a `ceiling` runner, each `counter.incr` cell that has a ceiling shape
/// takes one more turn per round: `redis-benchmark` in that shape, so that the
/// library and its ceiling are measured back to back, round after round. A
/// ceiling run that fails stops the ceiling (its reason is reported), not the run.
pub(crate) fn all(
    dsn: &Dsn,
    settings: &Settings,
    prefix: &str,
    setup: &mut redis::Connection,
    ceiling: Result<ceiling::Runner, String>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Vec<Measurement>, Ceiling), BenchError> {
    let client = setup_client(dsn)?;
    for name in HAND_SENT {
        let script = redisext::script::find(name).ok_or_else(|| BenchError::Unexpected(format!("no script {name}")))?;
        redis::cmd("SCRIPT").arg("LOAD").arg(script.source()).exec(setup)?;
    }
    let mut ceiling = ceiling.map(|runner| (runner, Vec::<CeilingRun>::new()));
    let cells = settings.cells();
    let ceiling_turns = if ceiling.is_ok() {
        cells.iter().filter(|&&(op, mode)| ceiling::shape(op, mode).is_some()).count()
    } else {
        0
    };
    let total = (cells.iter().map(|&(op, mode)| Settings::paths(op, mode).len()).sum::<usize>() + ceiling_turns)
        * settings.rounds;
    let mut done = 0;
    let mut measurements = Vec::new();
    for (op, mode) in cells {
        let paths = Settings::paths(op, mode);
        let first = measurements.len();
        measurements.extend(paths.iter().map(|&path| Measurement { op, mode, path, samples: Vec::new() }));
        let shape = ceiling::shape(op, mode).filter(|_| ceiling.is_ok());
        if let (Some(shape), Ok((_, runs))) = (shape, &mut ceiling) {
            runs.push(ceiling::empty_run(mode, shape));
        }
        let turns = paths.len() + usize::from(shape.is_some());
        for round in 0..settings.rounds {
            for turn in 0..turns {
                let index = (round + turn) % turns;
                let step =
                    |path: &dyn fmt::Display| format!("{op}, {mode}, round {}/{}, {path}", round + 1, settings.rounds);
                if index == paths.len() {
                    // The ceiling's turn.
                    if let (Some(shape), Ok((runner, runs))) = (shape, &mut ceiling) {
                        progress(&Progress { done, total, step: step(&"redis-benchmark") });
                        match runner.run(shape) {
                            Ok(per_second) => runs.last_mut().expect("this cell's run").per_round.push(per_second),
                            Err(reason) => ceiling = Err(reason),
                        }
                    }
                    done += 1;
                    continue;
                }
                let path = paths[index];
                progress(&Progress { done, total, step: step(&path) });
                let target =
                    Target { op, path, key: base_key(prefix, op, path)?, attempts: settings.attempts(op, mode) };
                let sample = measure(dsn, &target, mode, round + 1, setup, &client)?;
                measurements[first + index].samples.push(sample);
                done += 1;
            }
        }
    }
    progress(&Progress { done, total, step: "done".to_owned() });
    let ceiling = match ceiling {
        Ok((runner, runs)) => Ceiling::Measured { command: runner.command(), runs },
        Err(reason) => Ceiling::Skipped(reason),
    };
    Ok((measurements, ceiling))
}

/// One measurement, on keys reset beforehand.
fn measure(
    dsn: &Dsn,
    target: &Target,
    mode: Mode,
    round: usize,
    setup: &mut redis::Connection,
    client: &redisext::Client,
) -> Result<Sample, BenchError> {
    let keys = target.keys();
    redis::cmd("DEL").arg(keys.iter().map(redisext::Key::as_bytes).collect::<Vec<_>>()).exec(setup)?;
    target.prepare(setup, client)?;
    let shared = Arc::new(Shared::new(target));
    let worker = |client: usize| ops::worker(target, dsn, Arc::clone(&shared), client);
    let attempts = target.attempts;
    let (achieved, elapsed, latency_us) = match mode {
        Mode::Latency => {
            let mut worker = worker(0)?;
            let mut durations = Vec::with_capacity(attempts);
            let mut achieved = Attempt::default();
            let start = Instant::now();
            for _ in 0..attempts {
                let begun = Instant::now();
                achieved.add(worker.once()?);
                durations.push(begun.elapsed());
            }
            let elapsed = start.elapsed();
            durations.sort_unstable();
            let micros = |d: Duration| d.as_secs_f64() * 1e6;
            (achieved, elapsed, Some((micros(percentile(&durations, 50.0)), micros(percentile(&durations, 99.0)))))
        }
        Mode::Pipelined(depth) => {
            let mut worker = worker(0)?;
            let mut achieved = Attempt::default();
            let start = Instant::now();
            for _ in 0..attempts / depth {
                achieved.add(worker.batch(depth)?);
            }
            (achieved, start.elapsed(), None)
        }
        Mode::Contended(clients) => {
            let workers = (0..clients).map(worker).collect::<Result<Vec<_>, _>>()?;
            let (achieved, elapsed) = contended(workers, attempts / clients, target.op.retries_until_done())?;
            (achieved, elapsed, None)
        }
    };
    target.check(setup, &shared)?;
    Ok(Sample {
        round,
        attempts: achieved.attempts,
        done: achieved.done,
        retries: achieved.retries,
        violations: shared.violations(),
        seconds: elapsed.as_secs_f64(),
        latency_us,
    })
}

/// Runs every worker at once, each on a thread of its own, all starting together;
/// the time runs until the last one finishes. Each makes `per_client` attempts or,
/// with `until_done`, tries again at once after each failed attempt until
/// `per_client` have succeeded (a lock each client must take that many times).
fn contended(
    workers: Vec<Box<dyn Worker>>,
    per_client: usize,
    until_done: bool,
) -> Result<(Attempt, Duration), BenchError> {
    let barrier = Barrier::new(workers.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut worker| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let mut achieved = Attempt::default();
                    let wanted = per_client as u64;
                    // A bound against a path that can never succeed: give up.
                    let most = wanted.saturating_mul(if until_done { MAX_TRIES_PER_SUCCESS } else { 1 });
                    while achieved.attempts < most
                        && (if until_done { achieved.done } else { achieved.attempts }) < wanted
                    {
                        achieved.add(worker.once()?);
                    }
                    Ok::<_, BenchError>((achieved, started, Instant::now()))
                })
            })
            .collect();
        barrier.wait();
        // The window runs from the first client's start to the last one's finish,
        // each read on its own thread: a clock read here, after the barrier, could
        // come after a short run had already ended (0 s, and no rate).
        let mut window: Option<(Instant, Instant)> = None;
        let mut achieved = Attempt::default();
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok((attempt, started, finished))) => {
                    achieved.add(attempt);
                    window = Some(window.map_or((started, finished), |(s, e)| (s.min(started), e.max(finished))));
                }
                Ok(Err(error)) => {
                    failure.get_or_insert(error);
                }
                Err(_) => {
                    failure.get_or_insert(BenchError::Unexpected("a client thread panicked".into()));
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok((achieved, window.map_or(Duration::ZERO, |(start, end)| end - start))),
        }
    })
}

/// The `p`th percentile of sorted durations (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some numbers (the mean of the middle two for an even count).
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_micros(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }
}
