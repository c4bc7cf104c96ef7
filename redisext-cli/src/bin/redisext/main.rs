//! `redisext`: inspect, audit and load the Lua scripts this library runs on your
//! servers.
//!
//! Each command group lives in a module beside this file (`scripts`); `nodes`
//! resolves server URLs and finds every node behind one, for any command that
//! talks to servers; `bench` measures the scripts against their alternatives. A
//! new group is a new variant of [`Command`] and a new module.

mod bench;
mod nodes;
mod output;
mod scripts;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect, audit, load and benchmark the Lua scripts that redisext runs on Redis.
///
/// Every redisext operation is one of these scripts, embedded in this binary
/// with the SHA1 of its exact bytes. `redisext scripts` lists, shows, lints,
/// verifies and loads them; `redisext bench` measures them against plain
/// commands and WATCH/MULTI/EXEC; `redisext help scripts verify` explains a
/// command.
///
/// Exit status:
///   0  success
///   1  a check failed: lint findings, scripts missing on a node, invariant
///      violations on the script path of a benchmark
///   2  a usage error: bad arguments or URL, unknown script name
///   3  a server could not be reached or refused a command
#[derive(Debug, Parser)]
#[command(name = "redisext", version, propagate_version = true, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, show, lint, verify and load the bundled scripts.
    #[command(subcommand)]
    Scripts(scripts::ScriptsCommand),
    /// Measure the script path against hand-written EVALSHA, Python redisext's
    /// plain commands and WATCH/MULTI/EXEC, as ratios within one run: tables on
    /// standard output, every figure as JSON, a chart as SVG.
    ///
    /// Keys are created under `{redisext-bench:<run id>}:` and deleted at the
    /// end, also after an error (an interrupted run leaves them: delete the keys
    /// matching `{redisext-bench:*`); the bundled scripts it uses stay in the
    /// server's script cache.
    /// The server's ceiling comes from redis-benchmark when it is installed.
    #[command(verbatim_doc_comment)]
    Bench(bench::BenchArgs),
}

/// Why a command did not succeed, and the exit status that says so.
#[derive(Debug)]
pub(crate) struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    /// Bad input from the user: arguments, a URL, a script name (status 2).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure { status: 2, message: message.into() }
    }

    /// A server could not be reached or refused a command (status 3).
    pub(crate) fn server(message: impl Into<String>) -> Failure {
        Failure { status: 3, message: message.into() }
    }
}

/// What a command found when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything checked out (status 0).
    Passed,
    /// A check failed: findings, missing scripts (status 1).
    ChecksFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scripts(command) => scripts::run(command),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::ChecksFailed) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("redisext: error: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
