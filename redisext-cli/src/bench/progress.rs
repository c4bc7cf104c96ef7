//! Showing a long run's progress on standard error: a bar redrawn in place on a
//! terminal, one line per operation and mode otherwise (a log, a CI job).
//!
//! Redrawing in place is `\r`, clear the row, write: it works only while the
//! line fits on one row. A longer line wraps, `\r` returns to the start of its
//! last row, and every redraw leaves a stale row behind; so the line is clipped
//! to the terminal's width, read again at every redraw (the window may change).

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
            let line = clip(&self.line(progress), terminal_columns());
            let _ = write!(stderr, "\r\x1b[2K{line}");
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

/// The columns of the terminal on standard error: its window size, else
/// `COLUMNS`, else 80.
fn terminal_columns() -> usize {
    window_columns()
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|&columns| columns > 0)
        .unwrap_or(80)
}

#[cfg(unix)]
fn window_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the winsize it is given and touches nothing else;
    // on a descriptor that is not a terminal it fails and we fall back.
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    let status = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    (status == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn window_columns() -> Option<usize> {
    None
}

/// `line` cut to fit in `columns - 1` characters, ending in `…` when cut. The
/// last column stays empty: writing into it leaves some terminals about to wrap.
/// Every character the bar writes is one column wide.
fn clip(line: &str, columns: usize) -> String {
    let room = columns.saturating_sub(1).max(1);
    if line.chars().count() <= room {
        return line.to_owned();
    }
    let mut clipped: String = line.chars().take(room - 1).collect();
    clipped.push('…');
    clipped
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

    #[test]
    fn a_line_is_clipped_to_one_row_of_the_terminal() {
        let bar = ProgressBar { started: Instant::now(), terminal: true, last_cell: String::new() };
        let step = "lock.acquire_release, 64 clients, round 3/5, watch_multi";
        let line = bar.line(&Progress { done: 120, total: 480, step: step.into() });
        assert!(line.chars().count() > 80, "the test needs a line longer than 80 columns: {line}");
        let clipped = clip(&line, 80);
        assert_eq!(clipped.chars().count(), 79);
        assert!(clipped.ends_with('…') && line.starts_with(clipped.trim_end_matches('…')), "{clipped}");
        assert_eq!(clip("short", 80), "short");
        assert_eq!(clip(&"x".repeat(79), 80), "x".repeat(79));
        assert_eq!(clip(&"x".repeat(80), 80), format!("{}…", "x".repeat(78)));
        assert_eq!(clip("abc", 0), "…");
    }
}
