//! Where and when a run was made: what a figure means depends on it.

use std::time::{SystemTime, UNIX_EPOCH};

use super::BenchError;
use redisext::connection::Dsn;

/// The machine, the server and the moment of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Environment {
    /// When the run started, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// The processor's model name (`/proc/cpuinfo` on Linux), or `unknown`.
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Operating system and architecture of the client (`linux x86_64`).
    pub os: String,
    /// The server's `redis_version`.
    pub redis_version: String,
    /// The server, its password hidden.
    pub server: String,
    /// `release` or `debug`: figures from a debug build understate the client.
    pub build: &'static str,
    /// This library's version.
    pub library_version: &'static str,
}

impl Environment {
    /// Reads the client machine and asks the server (`INFO server`).
    pub(crate) fn read(connection: &mut redis::Connection, dsn: &Dsn) -> Result<Environment, BenchError> {
        let info: String = redis::cmd("INFO").arg("server").query(connection)?;
        let redis_version = info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .map_or_else(|| "unknown".to_owned(), |version| version.trim().to_owned());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(Environment {
            date: utc_minute(SystemTime::now()),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            redis_version,
            server: dsn.to_string(),
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
            library_version: env!("CARGO_PKG_VERSION"),
        })
    }
}

/// `YYYY-MM-DD HH:MM UTC` for a moment (the proleptic Gregorian calendar).
pub(crate) fn utc_minute(moment: SystemTime) -> String {
    let seconds = moment.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_minute(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 UTC: a leap day in a year divisible by 400.
        assert_eq!(utc_minute(UNIX_EPOCH + Duration::from_secs(951_827_640)), "2000-02-29 12:34 UTC");
        // 2024-12-31 23:59 UTC.
        assert_eq!(utc_minute(UNIX_EPOCH + Duration::from_secs(1_735_689_540)), "2024-12-31 23:59 UTC");
    }
}
