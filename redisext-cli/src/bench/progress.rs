//! Showing a long run's progress on standard error: a bar redrawn in place on a
//! terminal, one line per operation and mode otherwise (a log, a CI job).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::Progress;

/// Draws [`Progress`] reports on standard error.
///
/// ```
/// use redisext_cli::bench::{Progress, ProgressBar};
/// let mut bar = ProgressBar::new();
/// bar.show(&Progress { done: 3, total: 10, step: "counter.incr, single client, round 1/5, library".into() });
/// bar.finish();
/// ```
#[derive(Debug)]
pub struct ProgressBar {
    started: Instant,
    terminal: bool,
    last_cell: String,
}

impl Default for ProgressBar {
    fn default() -> Self {
        ProgressBar::new()
    }
}

impl ProgressBar {
    /// A bar on standard error: redrawn in place when it is a terminal.
    pub fn new() -> ProgressBar {
        ProgressBar { started: Instant::now(), terminal: std::io::stderr().is_terminal(), last_cell: String::new() }
    }

    /// Shows where the run is.
    pub fn show(&mut self, progress: &Progress) {
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[2K{}", self.line(progress));
        } else {
            // The operation and mode, without the round and path.
            let cell = progress.step.split(", round").next().unwrap_or_default();
            if cell != self.last_cell {
                self.last_cell = cell.to_owned();
                let _ = writeln!(stderr, "[{}/{}] {cell}", progress.done, progress.total);
            }
        }
        let _ = stderr.flush();
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// `[#####·····]  37%  45/120  1m20s left  step`
    fn line(&self, progress: &Progress) -> String {
        const WIDTH: usize = 24;
        let share = if progress.total == 0 { 1.0 } else { progress.done as f64 / progress.total as f64 };
        let filled = ((share * WIDTH as f64).round() as usize).min(WIDTH);
        let left = if progress.done == 0 {
            String::new()
        } else {
            let elapsed = self.started.elapsed().as_secs_f64();
            let remaining =
                elapsed / progress.done as f64 * (progress.total - progress.done.min(progress.total)) as f64;
            format!("  {} left", minutes(Duration::from_secs_f64(remaining)))
        };
        format!(
            "[{}{}] {:>3.0}%  {}/{}{left}  {}",
            "#".repeat(filled),
            "·".repeat(WIDTH - filled),
            share * 100.0,
            progress.done,
            progress.total,
            progress.step
        )
    }
}

/// `1m20s`, `45s`.
fn minutes(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 { format!("{}m{:02}s", seconds / 60, seconds % 60) } else { format!("{seconds}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_progress() {
        let bar = ProgressBar { started: Instant::now(), terminal: true, last_cell: String::new() };
        let line = bar.line(&Progress { done: 6, total: 24, step: "x".into() });
        assert!(line.starts_with("[######··················]  25%  6/24"), "{line}");
        assert!(line.ends_with("  x"));
        assert_eq!(minutes(Duration::from_secs(80)), "1m20s");
        assert_eq!(minutes(Duration::from_secs(45)), "45s");
    }
}
