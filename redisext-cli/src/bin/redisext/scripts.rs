//! `redisext scripts …`: list, show, describe, lint, verify and load the bundled
//! scripts.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use redisext::{Reply, Script, manifest, script};
use redisext_cli::lint;
use serde_json::{Value, json};

use crate::nodes::{NodeLink, ServerArgs};
use crate::output::{self, Format, FormatArgs};
use crate::{Failure, Outcome};

#[derive(Debug, Subcommand)]
pub(crate) enum ScriptsCommand {
    /// One row per bundled script: name, SHA1, read-only or write, keys,
    /// arguments, lines.
    ///
    /// Read-only scripts (`#!lua flags=no-writes`) may run on replicas; `+oom`
    /// marks scripts that only take data away and so run even on a server out
    /// of memory (`allow-oom`).
    #[command(verbatim_doc_comment)]
    List(FormatArgs),
    /// Print a script's exact source, as sent with SCRIPT LOAD, with its SHA1.
    ///
    /// The first line names the script and its SHA1; the source follows after
    /// a blank line. With --raw only the source is printed, byte for byte, so
    /// `redisext scripts show --raw NAME | sha1sum` gives the SHA1.
    #[command(verbatim_doc_comment)]
    Show {
        /// The script's name, `model/op` (see `redisext scripts list`).
        name: String,
        /// Print only the source.
        #[arg(verbatim_doc_comment, long)]
        raw: bool,
    },
    /// Print the JSON manifest of every script, for auditing and diffing
    /// between releases.
    ///
    /// Per script: name, SHA1, flags, keys and arguments (from the header),
    /// what it returns, its worst case, the Redis commands it calls, lines and
    /// bytes; plus the crate version and one digest over all names and SHA1s.
    /// The library returns the same from `redisext::manifest::manifest()`.
    #[command(verbatim_doc_comment)]
    Manifest,
    /// Check scripts against the conventions every redisext script follows.
    ///
    /// Checks: the `#!lua` shebang and its flags; the header comment right
    /// after it, naming the script, with a summary, `Returns` and `Worst case`;
    /// the header's KEYS[i]/ARGV[i] lines match exactly the indices the script
    /// reads; every key argument of redis.call comes from KEYS (no key name
    /// built in Lua); a `flags=no-writes` script calls no write command (and a
    /// script that writes nothing has the flag); an `allow-oom` script adds no
    /// data; no forbidden command (KEYS, SCAN, FLUSHALL, FLUSHDB, SCRIPT,
    /// CONFIG, DEBUG, SHUTDOWN, EVAL, FUNCTION, MONITOR, SAVE, blocking
    /// commands…); every loop bounded by an argument, a constant or a bounded
    /// reply. Each finding names file, line and rule. Exit status 1 when there
    /// are findings.
    #[command(verbatim_doc_comment)]
    Lint {
        /// A directory of scripts laid out as lua/ (`<model>/<op>.lua`).
        /// Default: ./lua when it exists, else the scripts built into this binary.
        #[arg(verbatim_doc_comment)]
        dir: Option<PathBuf>,
        /// Check the scripts built into this binary, even where ./lua exists.
        #[arg(verbatim_doc_comment, long, conflicts_with = "dir")]
        embedded: bool,
        /// Print the findings as JSON.
        #[arg(verbatim_doc_comment, long)]
        json: bool,
    },
    /// Check that every script is loaded on the server and every node behind it.
    ///
    /// Sends SCRIPT EXISTS to the server given, its master and replicas (found
    /// with INFO replication, through chains of replicas) and, on a cluster,
    /// every node CLUSTER NODES lists; reports per node which scripts are
    /// loaded and which are missing. Redis does not copy SCRIPT LOAD to
    /// replicas, so a new or restarted replica lacks them (redisext loads a
    /// missing script when it first needs it; `scripts load` does it ahead).
    /// Exit status 0 only when every node has every script; 1 when scripts are
    /// missing; 3 when a node cannot be reached.
    #[command(verbatim_doc_comment)]
    Verify {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the result as JSON.
        #[arg(verbatim_doc_comment, long)]
        json: bool,
    },
    /// Load every script on the server and every node behind it.
    ///
    /// Finds the nodes as `verify` does, sends SCRIPT LOAD for each script a
    /// node lacks, checks that the server computed the bundled SHA1, and reports
    /// what it loaded where. Useful after a failover, a restart or a new
    /// replica. Exit status 3 when a node cannot be reached or refuses.
    #[command(verbatim_doc_comment)]
    Load {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the result as JSON.
        #[arg(verbatim_doc_comment, long)]
        json: bool,
    },
}

pub(crate) fn run(command: ScriptsCommand) -> Result<Outcome, Failure> {
    match command {
        ScriptsCommand::List(format) => list(format.resolve()),
        ScriptsCommand::Show { name, raw } => show(&name, raw),
        ScriptsCommand::Manifest => output::print(&manifest::manifest_json()).map(|()| Outcome::Passed),
        ScriptsCommand::Lint { dir, embedded, json } => lint(dir.as_deref(), embedded, json),
        ScriptsCommand::Verify { server, json } => verify(&server, json),
        ScriptsCommand::Load { server, json } => load(&server, json),
    }
}

/// `write`, `read`, with `+oom` for allow-oom scripts.
fn mode(script: Script) -> String {
    let mode = if script.is_read_only() { "read" } else { "write" };
    if script.allows_oom() { format!("{mode}+oom") } else { mode.to_owned() }
}

fn list(format: Format) -> Result<Outcome, Failure> {
    if format == Format::Json {
        let rows: Vec<Value> = script::all()
            .map(|script| {
                let header = script.header();
                json!({
                    "name": script.name(),
                    "sha1": script.sha1(),
                    "read_only": script.is_read_only(),
                    "allow_oom": script.allows_oom(),
                    "keys": header.keys.len(),
                    "args": header.args.iter().map(|param| param.name.as_str()).collect::<Vec<_>>(),
                    "lines": script.source().lines().count(),
                })
            })
            .collect();
        output::print(&output::json(&Value::Array(rows)))?;
        return Ok(Outcome::Passed);
    }
    let rows: Vec<Vec<String>> = script::all()
        .map(|script| {
            let header = script.header();
            let args: Vec<&str> = header.args.iter().map(|param| param.name.as_str()).collect();
            vec![
                script.name().to_owned(),
                script.sha1().to_owned(),
                mode(script),
                header.keys.len().to_string(),
                if args.is_empty() { "-".to_owned() } else { args.join(", ") },
                script.source().lines().count().to_string(),
            ]
        })
        .collect();
    output::print(&output::table(&["NAME", "SHA1", "MODE", "KEYS", "ARGS", "LINES"], &rows, format))?;
    Ok(Outcome::Passed)
}

/// The bundled script called `name`, or a usage error suggesting close names.
fn find_script(name: &str) -> Result<Script, Failure> {
    if let Some(script) = script::find(name) {
        return Ok(script);
    }
    let model = name.split('/').next().unwrap_or(name);
    let close: Vec<&str> = script::all()
        .map(|script| script.name())
        .filter(|candidate| candidate.contains(name) || candidate.split('/').next() == Some(model))
        .collect();
    let hint = if close.is_empty() {
        "see `redisext scripts list`".to_owned()
    } else {
        format!("did you mean {}?", close.join(", "))
    };
    Err(Failure::usage(format!("no bundled script is named `{name}`: {hint}")))
}

fn show(name: &str, raw: bool) -> Result<Outcome, Failure> {
    let script = find_script(name)?;
    let source = script.source();
    if raw {
        output::print(source)?;
    } else {
        let lines = source.lines().count();
        let bytes = source.len();
        let mode = mode(script);
        let header = format!("{}  sha1 {}  ({mode}, {lines} lines, {bytes} bytes)\n\n", script.name(), script.sha1());
        output::print(&(header + source))?;
    }
    Ok(Outcome::Passed)
}

fn lint(dir: Option<&Path>, embedded: bool, json: bool) -> Result<Outcome, Failure> {
    let repo_lua = Path::new("lua");
    let (report, checked) = match dir {
        Some(dir) if !dir.is_dir() => {
            return Err(Failure::usage(format!("{} is not a directory of scripts", dir.display())));
        }
        Some(dir) => (read_dir_report(dir)?, dir.display().to_string()),
        None if !embedded && repo_lua.is_dir() => (read_dir_report(repo_lua)?, "lua".to_owned()),
        None => (lint::check_bundled(), "the scripts built into redisext".to_owned()),
    };
    if json {
        let findings: Vec<Value> = report
            .findings
            .iter()
            .map(|f| json!({ "path": f.path, "line": f.line, "rule": f.rule.name(), "message": f.message }))
            .collect();
        output::print(&output::json(&json!({ "checked": checked, "scripts": report.scripts, "findings": findings })))?;
    } else {
        let mut text: String = report.findings.iter().map(|finding| format!("{finding}\n")).collect();
        let count = report.findings.len();
        let verdict = match count {
            0 => "no findings".to_owned(),
            1 => "1 finding".to_owned(),
            n => format!("{n} findings"),
        };
        text.push_str(&format!("checked {} scripts in {checked}: {verdict}\n", report.scripts));
        output::print(&text)?;
    }
    Ok(if report.is_clean() { Outcome::Passed } else { Outcome::ChecksFailed })
}

fn read_dir_report(dir: &Path) -> Result<lint::Report, Failure> {
    lint::check_dir(dir).map_err(|error| Failure::usage(format!("cannot read {}: {error}", dir.display())))
}

/// Which bundled scripts a node has, from one `SCRIPT EXISTS`.
fn scripts_present(node: &NodeLink) -> Result<Vec<(Script, bool)>, String> {
    let scripts: Vec<Script> = script::all().collect();
    let mut args: Vec<&[u8]> = vec![b"SCRIPT", b"EXISTS"];
    args.extend(scripts.iter().map(|script| script.sha1().as_bytes()));
    match node.query(&args)? {
        Reply::Array(flags) if flags.len() == scripts.len() => {
            Ok(scripts.into_iter().zip(flags).map(|(script, flag)| (script, flag == Reply::Int(1))).collect())
        }
        other => Err(format!("SCRIPT EXISTS answered {}", other.describe())),
    }
}

/// What happened on one node.
struct NodeResult {
    node: String,
    role: String,
    /// Scripts present before (verify) or loaded already (load).
    present: Vec<Script>,
    /// Scripts missing (verify) or loaded now (load).
    changed: Vec<Script>,
    error: Option<String>,
}

impl NodeResult {
    fn new(node: &NodeLink) -> NodeResult {
        NodeResult {
            node: node.dsn.to_string(),
            role: node.role.clone(),
            present: Vec::new(),
            changed: Vec::new(),
            error: node.error.clone(),
        }
    }

    /// `node (role): `, without the role when the node could not be asked.
    fn title(&self) -> String {
        if self.role == "unknown" { format!("{}: ", self.node) } else { format!("{} ({}): ", self.node, self.role) }
    }

    fn to_json(&self, present: &str, changed: &str) -> Value {
        let names = |scripts: &[Script]| scripts.iter().map(|s| s.name()).collect::<Vec<_>>();
        json!({
            "node": self.node,
            "role": self.role,
            present: names(&self.present),
            changed: names(&self.changed),
            "error": self.error,
        })
    }
}

fn verify(server: &ServerArgs, json: bool) -> Result<Outcome, Failure> {
    let nodes = server.reach()?;
    let results: Vec<NodeResult> = nodes
        .iter()
        .map(|node| {
            let mut result = NodeResult::new(node);
            if result.error.is_none() {
                match scripts_present(node) {
                    Ok(flags) => {
                        for (script, present) in flags {
                            if present { result.present.push(script) } else { result.changed.push(script) }
                        }
                    }
                    Err(error) => result.error = Some(error),
                }
            }
            result
        })
        .collect();
    let unreachable = results.iter().filter(|r| r.error.is_some()).count();
    let incomplete = results.iter().filter(|r| r.error.is_none() && !r.changed.is_empty()).count();
    let total = script::all().len();
    if json {
        let nodes: Vec<Value> = results.iter().map(|r| r.to_json("loaded", "missing")).collect();
        let ok = unreachable == 0 && incomplete == 0;
        output::print(&output::json(&json!({ "ok": ok, "scripts": total, "nodes": nodes })))?;
    } else {
        let mut text = String::new();
        for result in &results {
            text.push_str(&result.title());
            if let Some(error) = &result.error {
                text.push_str(&format!("unreachable: {error}\n"));
            } else if result.changed.is_empty() {
                text.push_str(&format!("all {total} scripts loaded\n"));
            } else {
                text.push_str(&format!("{} of {total} scripts loaded; missing:\n", result.present.len()));
                text.push_str(&script_lines("", &result.changed));
            }
        }
        text.push_str(&summary(results.len(), incomplete, unreachable));
        output::print(&text)?;
    }
    if unreachable > 0 {
        Err(Failure::server(format!("{unreachable} of {} nodes could not be checked", results.len())))
    } else if incomplete > 0 {
        Ok(Outcome::ChecksFailed)
    } else {
        Ok(Outcome::Passed)
    }
}

/// One indented line per script, `<prefix><name>  <sha1>`, names aligned.
fn script_lines(prefix: &str, scripts: &[Script]) -> String {
    let width = scripts.iter().map(|script| script.name().len()).max().unwrap_or(0);
    scripts.iter().map(|script| format!("  {prefix}{:width$}  {}\n", script.name(), script.sha1())).collect()
}

fn summary(nodes: usize, incomplete: usize, unreachable: usize) -> String {
    let plural = |n: usize, word: &str| if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") };
    let mut line = format!("{} checked", plural(nodes, "node"));
    if incomplete == 0 && unreachable == 0 {
        line.push_str(": every script is loaded everywhere");
    }
    if incomplete > 0 {
        line.push_str(&format!(
            "; {} missing scripts (`redisext scripts load` loads them)",
            plural(incomplete, "node")
        ));
    }
    if unreachable > 0 {
        line.push_str(&format!("; {} unreachable", plural(unreachable, "node")));
    }
    line.push('\n');
    line
}

/// `SCRIPT LOAD`, checking that the server computed the bundled SHA1.
fn load_script(node: &NodeLink, script: Script) -> Result<(), String> {
    match node.query(&[b"SCRIPT", b"LOAD", script.source().as_bytes()])? {
        Reply::Bulk(sha1) if sha1 == script.sha1().as_bytes() => Ok(()),
        Reply::Bulk(sha1) => Err(format!(
            "{}: the server computed SHA1 {}, but the bundled SHA1 is {}",
            script.name(),
            String::from_utf8_lossy(&sha1),
            script.sha1()
        )),
        other => Err(format!("SCRIPT LOAD {} answered {}", script.name(), other.describe())),
    }
}

fn load(server: &ServerArgs, json: bool) -> Result<Outcome, Failure> {
    let nodes = server.reach()?;
    let results: Vec<NodeResult> = nodes
        .iter()
        .map(|node| {
            let mut result = NodeResult::new(node);
            if result.error.is_some() {
                return result;
            }
            let flags = match scripts_present(node) {
                Ok(flags) => flags,
                Err(error) => {
                    result.error = Some(error);
                    return result;
                }
            };
            for (script, present) in flags {
                if present {
                    result.present.push(script);
                } else if let Err(error) = load_script(node, script) {
                    result.error = Some(error);
                    break;
                } else {
                    result.changed.push(script);
                }
            }
            result
        })
        .collect();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if json {
        let nodes: Vec<Value> = results.iter().map(|r| r.to_json("already_loaded", "loaded")).collect();
        output::print(&output::json(&json!({ "ok": failed == 0, "nodes": nodes })))?;
    } else {
        let mut text = String::new();
        for result in &results {
            text.push_str(&result.title());
            let (loaded, already) = (result.changed.len(), result.present.len());
            match (&result.error, loaded) {
                (Some(error), 0) => text.push_str(&format!("failed: {error}\n")),
                (Some(error), _) => text.push_str(&format!("loaded {loaded} scripts, then failed: {error}\n")),
                (None, 0) => text.push_str(&format!("nothing to do, all {already} scripts were loaded\n")),
                (None, _) => text.push_str(&format!("loaded {loaded} scripts ({already} were loaded already)\n")),
            }
            text.push_str(&script_lines("loaded ", &result.changed));
        }
        output::print(&text)?;
    }
    if failed > 0 {
        Err(Failure::server(format!("{failed} of {} nodes could not be loaded", results.len())))
    } else {
        Ok(Outcome::Passed)
    }
}
