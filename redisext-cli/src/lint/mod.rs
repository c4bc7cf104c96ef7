//! Static checks of the bundled Lua scripts against the crate's script
//! conventions ("Script conventions" in docs/auditing.md), shared by the test suite and
//! `redisext scripts lint`.
//!
//! Each [`Finding`] names a file, a line and a [`Rule`]:
//!
//! | rule | what it checks |
//! |---|---|
//! | `shebang` | the first line is `#!lua`, with at most the flags `no-writes` and `allow-oom` |
//! | `name` | the file is `lua/<model>/<op>.lua`, both parts snake_case |
//! | `header` | the header comment follows the shebang, names the file's `model/op`, and has a summary, a `Returns` and a `Worst case` line |
//! | `header-keys` | the header's `KEYS[i]`/`ARGV[i]` lines number 1, 2, 3… and match exactly the indices the body reads (a line whose description says `not read` may go unread: the model's own key, passed for its name) |
//! | `key-from-keys` | every key argument of `redis.call`/`redis.pcall` comes from `KEYS` (never a name built in Lua) |
//! | `no-writes` | a `flags=no-writes` script calls no write command (Redis would refuse it at run time) |
//! | `forbidden` | no `KEYS`, `SCAN`, `FLUSHALL`, `FLUSHDB`, `SCRIPT`, `CONFIG`, `DEBUG`, `SHUTDOWN`, `EVAL*`, `FUNCTION`, `MONITOR`, `SAVE`, blocking commands…; no `loadstring` |
//! | `unknown-command` | the command name is a string literal the lint knows |
//! | `loop-bound` | every loop's bound comes from an argument, a constant or a bounded reply |
//! | `syntax` | the script is Lua the lint can read |
//!
//! # How "from KEYS" and "bounded" are decided
//!
//! The lint reads the script's syntax, not its run: it does not follow values
//! through function calls or across scopes, and it errs towards a finding.
//!
//! - A key argument is *from KEYS* when it is `KEYS[…]`, `unpack(KEYS, …)`, or a
//!   name every value of which is from KEYS (`local queue = KEYS[1]`). Which
//!   arguments are keys is Redis 7's own key specification for each command. A
//!   `numkeys` argument that is not a literal number makes every following
//!   argument up to the first string literal a key. A last argument that expands
//!   to several values (`unpack(...)`) counts as a key when key positions reach it.
//! - A value is *bounded* when it comes from the caller or the script itself:
//!   a literal, anything read from `ARGV` or `KEYS`, `#t` of a bounded table,
//!   arithmetic and library functions (`tonumber`, `string.*`, `cjson.decode`…)
//!   of bounded values, `math.min` with at least one bounded argument, or a name
//!   every value of which is bounded. A reply from Redis is never a bounded
//!   value: `for i = 1, redis.call('LLEN', k)` is a finding.
//! - A table is *bounded* when it is `ARGV`, `KEYS`, a table built in the script
//!   (it can only grow inside loops, which are checked too), or a reply whose
//!   size a bounded argument limits: `LPOP k n`, `LRANGE k 0 n` (not `0 -1`),
//!   `ZRANGE … BYSCORE … LIMIT 0 n`, `XRANGE … COUNT n`, `HMGET`, `TIME`… A reply
//!   of a whole collection (`SMEMBERS`, `HGETALL`, `LRANGE k 0 -1`) is not.
//! - A numeric `for` needs a bounded start, limit and step (a literal step of 0
//!   never ends); a generic `for` must iterate `ipairs`/`pairs`/`next` over a
//!   bounded table or `string.gmatch` over a bounded string; a `while` or
//!   `repeat … until` condition must contain an ordering comparison (`<`, `<=`,
//!   `>`, `>=`) of two bounded values that ends the loop whatever the other
//!   conditions say. The lint checks that a bound exists, not that the loop
//!   moves towards it.

mod commands;
mod lua;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use commands::{Access, Command, KeySpec, ReplySize};
use lua::{Chunk, Expr, ExprKind, LoopKind, RedisCall};
use redisext::script::Header;

/// The flags a redisext script may put on its shebang line.
const ALLOWED_FLAGS: &[&str] = &["no-writes", "allow-oom"];

/// Functions that run Lua code built at run time, or change replication.
const FORBIDDEN_FUNCTIONS: &[(&str, &str)] = &[
    ("loadstring", "it runs Lua source built at run time: no Lua source is ever generated from data"),
    ("load", "it runs Lua source built at run time: no Lua source is ever generated from data"),
    ("dofile", "it runs Lua source from elsewhere"),
    ("loadfile", "it runs Lua source from elsewhere"),
    ("redis.set_repl", "it changes what is replicated, so a replica would no longer match its master"),
];

/// Which convention a finding breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The first line is not `#!lua [flags=…]` with known flags.
    Shebang,
    /// The file is not `lua/<model>/<op>.lua` in snake_case.
    Name,
    /// The header comment is missing, misplaced, misnamed or incomplete.
    Header,
    /// The header's `KEYS`/`ARGV` lines differ from what the body reads.
    HeaderKeys,
    /// A key argument does not come from `KEYS`.
    KeyFromKeys,
    /// A `flags=no-writes` script calls a write command.
    NoWrites,
    /// A forbidden command or function.
    Forbidden,
    /// A command the lint does not know, or a name that is not a literal.
    UnknownCommand,
    /// A loop whose bound the lint cannot trace to an argument or a constant.
    LoopBound,
    /// Lua the lint cannot read.
    Syntax,
}

impl Rule {
    /// The rule's name as findings show it (`key-from-keys`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Shebang => "shebang",
            Rule::Name => "name",
            Rule::Header => "header",
            Rule::HeaderKeys => "header-keys",
            Rule::KeyFromKeys => "key-from-keys",
            Rule::NoWrites => "no-writes",
            Rule::Forbidden => "forbidden",
            Rule::UnknownCommand => "unknown-command",
            Rule::LoopBound => "loop-bound",
            Rule::Syntax => "syntax",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken convention, at a file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file, as it was given to the lint (`lua/pool/checkout.lua`).
    pub path: String,
    /// The line, counting from 1.
    pub line: usize,
    /// The convention broken.
    pub rule: Rule,
    /// What is wrong, and what the convention asks for.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: [{}] {}", self.path, self.line, self.rule, self.message)
    }
}

/// The findings of a lint run over several scripts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// How many scripts were checked.
    pub scripts: usize,
    /// Every finding, by file and line.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when no script broke any rule.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks the scripts bundled in this build.
///
/// ```
/// let report = redisext_cli::lint::check_bundled();
/// assert!(report.scripts > 0);
/// assert!(report.is_clean(), "{:?}", report.findings);
/// ```
pub fn check_bundled() -> Report {
    let mut report = Report::default();
    for script in redisext::script::all() {
        let path = format!("lua/{}.lua", script.name());
        report.findings.extend(check_script(script.name(), &path, script.source()));
        report.scripts += 1;
    }
    report
}

/// Checks every `*.lua` file under `dir` (a `lua/` directory: a file's name is
/// its path below `dir`, `pool/checkout` for `dir/pool/checkout.lua`). Paths in
/// the findings start with `dir` as given.
pub fn check_dir(dir: &Path) -> std::io::Result<Report> {
    let mut files = Vec::new();
    collect_lua_files(dir, &mut files)?;
    files.sort();
    let mut report = Report::default();
    for file in files {
        let source = std::fs::read(&file)?;
        let source = String::from_utf8_lossy(&source);
        let relative = file.strip_prefix(dir).unwrap_or(&file).with_extension("");
        let name: Vec<String> =
            relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
        report.findings.extend(check_script(&name.join("/"), &file.display().to_string(), &source));
        report.scripts += 1;
    }
    Ok(report)
}

fn collect_lua_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_lua_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "lua") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks one script. `name` is the name its path gives it (`pool/checkout`),
/// `path` how findings show the file, `source` its exact text.
pub fn check_script(name: &str, path: &str, source: &str) -> Vec<Finding> {
    let mut lint = Lint { path, findings: Vec::new() };
    let flags = lint.shebang(source);
    lint.name(name);
    let header = Header::parse(source);
    lint.header(name, source, &header);
    match lua::parse(source) {
        Err(error) => lint.report(error.line, Rule::Syntax, format!("cannot read the script: {}", error.message)),
        Ok(chunk) => {
            lint.header_indices(&header, &chunk);
            let analysis = Analysis { chunk: &chunk };
            lint.calls(&analysis, source, &flags);
            lint.functions(&chunk);
            lint.loops(&analysis, source);
        }
    }
    lint.findings.sort_by_key(|finding| finding.line);
    lint.findings
}

/// A number written out, `-1` included (Lua reads it as `-` applied to `1`).
fn number_literal(expr: &Expr) -> Option<f64> {
    match &expr.kind {
        ExprKind::Number(n) => Some(*n),
        ExprKind::Unary("-", inner) => number_literal(inner).map(|n| -n),
        ExprKind::Paren(inner) => number_literal(inner),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Str(text) => Some(text),
        _ => None,
    }
}

/// An expression's source, on one line and cut short, for messages.
fn shown(source: &str, expr: &Expr) -> String {
    let text = source.get(expr.span.clone()).unwrap_or("?");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}

struct Lint<'p> {
    path: &'p str,
    findings: Vec<Finding>,
}

/// A command call resolved against the table: the command and its arguments
/// (argument 1 first; the subcommand of a container is argument 1).
struct Resolved<'c> {
    command: &'static Command,
    /// The name shown in messages (`SET`, `XGROUP CREATE`).
    shown: String,
    args: &'c [Expr],
}

impl Lint<'_> {
    fn report(&mut self, line: usize, rule: Rule, message: impl Into<String>) {
        self.findings.push(Finding { path: self.path.to_owned(), line, rule, message: message.into() });
    }

    /// Checks the first line and returns its flags.
    fn shebang(&mut self, source: &str) -> Vec<String> {
        let first = source.lines().next().unwrap_or_default();
        let Some(rest) = first.strip_prefix("#!lua").filter(|rest| rest.is_empty() || rest.starts_with(' ')) else {
            self.report(
                1,
                Rule::Shebang,
                "the first line must be `#!lua` (read-only scripts: `#!lua flags=no-writes`)",
            );
            return Vec::new();
        };
        let mut flags = Vec::new();
        for word in rest.split_whitespace() {
            match word.strip_prefix("flags=") {
                Some(list) => flags.extend(list.split(',').map(str::to_owned)),
                None => {
                    self.report(1, Rule::Shebang, format!("unknown shebang option `{word}`: only `flags=` is used"))
                }
            }
        }
        for flag in &flags {
            if !ALLOWED_FLAGS.contains(&flag.as_str()) {
                self.report(
                    1,
                    Rule::Shebang,
                    format!("flag `{flag}` is not used by redisext scripts: the flags are `no-writes` and `allow-oom`"),
                );
            }
        }
        flags
    }

    fn name(&mut self, name: &str) {
        let snake = |part: &str| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() != 2 || !parts.iter().all(|part| snake(part)) {
            self.report(1, Rule::Name, format!("`{name}` is not `<model>/<op>` in snake_case (lua/<model>/<op>.lua)"));
        }
    }

    fn header(&mut self, name: &str, source: &str, header: &Header) {
        let opening = source.lines().position(|line| line.trim_start().starts_with("--[[")).map(|index| index + 1);
        let Some(opening) = opening else {
            self.report(2, Rule::Header, format!("no header comment: line 2 must open it with `--[[ {name}`"));
            return;
        };
        if opening != 2 {
            self.report(opening, Rule::Header, "the header comment must begin on line 2, right after the shebang");
        }
        if header.name != name {
            self.report(
                opening,
                Rule::Header,
                format!("the header names `{}` but the file is `{name}`: open it with `--[[ {name}`", header.name),
            );
        }
        if header.summary.is_empty() {
            self.report(opening, Rule::Header, "the header has no summary line saying what the script does");
        }
        if header.returns.is_empty() {
            self.report(opening, Rule::Header, "the header has no `Returns` line");
        }
        if header.worst_case.is_empty() {
            self.report(opening, Rule::Header, "the header has no `Worst case` line (the cost, and what bounds it)");
        }
    }

    fn header_indices(&mut self, header: &Header, chunk: &Chunk) {
        let line_of = |label: &str| header.lines.iter().find(|(entry, _)| entry == label).map_or(2, |(_, line)| *line);
        for (table, declared, read, dynamic) in [
            ("KEYS", &header.keys, &chunk.keys_read, chunk.keys_dynamic),
            ("ARGV", &header.args, &chunk.args_read, chunk.args_dynamic),
        ] {
            let mut seen = BTreeSet::new();
            for (position, param) in declared.iter().enumerate() {
                let (index, description) = (&param.index, &param.description);
                let label = param.label(table);
                if param.name.is_empty() {
                    self.report(
                        line_of(&label),
                        Rule::HeaderKeys,
                        format!("{label} has no name: write `{label}  <snake_case_name>  <description>`"),
                    );
                }
                if !seen.insert(*index) {
                    self.report(line_of(&label), Rule::HeaderKeys, format!("the header declares {label} twice"));
                } else if *index != position + 1 {
                    self.report(
                        line_of(&label),
                        Rule::HeaderKeys,
                        format!(
                            "the header's {table} lines must be numbered 1, 2, 3… in order: {label} is number {}",
                            position + 1
                        ),
                    );
                }
                let unread_on_purpose = description.to_ascii_lowercase().contains("not read");
                if !read.contains_key(index) && !dynamic && !unread_on_purpose {
                    self.report(
                        line_of(&label),
                        Rule::HeaderKeys,
                        format!("the header declares {label} but the script never reads it (say `not read` if it is passed on purpose)"),
                    );
                }
            }
            let variadic_from = declared.last().filter(|param| param.variadic).map(|param| param.index);
            for (index, line) in read {
                if !seen.contains(index) && variadic_from.is_none_or(|from| *index < from) {
                    self.report(
                        *line,
                        Rule::HeaderKeys,
                        format!("the script reads {table}[{index}] but the header has no `{table}[{index}]` line"),
                    );
                }
            }
        }
    }

    fn calls(&mut self, analysis: &Analysis<'_>, source: &str, flags: &[String]) {
        let read_only = flags.iter().any(|flag| flag == "no-writes");
        for call in &analysis.chunk.calls {
            let Some(Resolved { command, shown: name, args }) = self.resolve(call) else { continue };
            if read_only && command.access == Access::Write {
                self.report(
                    call.line,
                    Rule::NoWrites,
                    format!(
                        "{name} is a write command, but the script is flagged `no-writes` (Redis refuses it there)"
                    ),
                );
            }
            for position in key_positions(command, args) {
                let argument = &args[position - 1];
                if !analysis.comes_from_keys(argument) {
                    self.report(
                        call.line,
                        Rule::KeyFromKeys,
                        format!(
                            "argument {position} of {name} is a key, but `{}` does not come from KEYS: pass every \
                             key in KEYS, never build or take a key name from elsewhere",
                            shown(source, argument)
                        ),
                    );
                }
            }
        }
    }

    /// Looks the command of a call up, reporting unknown and forbidden ones.
    fn resolve<'c>(&mut self, call: &'c RedisCall) -> Option<Resolved<'c>> {
        let Some(first) = call.args.first() else {
            self.report(call.line, Rule::UnknownCommand, "redis.call without a command name");
            return None;
        };
        let Some(name) = literal(first) else {
            self.report(
                call.line,
                Rule::UnknownCommand,
                "the command name is not a string literal, so the lint cannot check the call: write it out",
            );
            return None;
        };
        let name = name.to_ascii_uppercase();
        let Some(command) = commands::find(&name) else {
            self.report(
                call.line,
                Rule::UnknownCommand,
                format!("unknown command {name}: the lint has no key positions for it (see src/lint/commands.rs)"),
            );
            return None;
        };
        let (command, shown, args) = if command.access == Access::Container {
            let sub = call.args.get(1).and_then(literal).map(str::to_ascii_uppercase);
            let found = sub.as_ref().and_then(|sub| commands::find(&format!("{name}|{sub}")));
            let (Some(sub), Some(found)) = (sub, found) else {
                self.report(
                    call.line,
                    Rule::UnknownCommand,
                    format!("unknown {name} subcommand: write it as a string literal the lint knows"),
                );
                return None;
            };
            // Key positions of a subcommand count the subcommand itself as 1.
            (found, format!("{name} {sub}"), &call.args[1..])
        } else {
            (command, name, &call.args[1..])
        };
        if let Access::Forbidden(reason) = command.access {
            self.report(call.line, Rule::Forbidden, format!("{shown} is forbidden: {reason}"));
            return None;
        }
        Some(Resolved { command, shown, args })
    }

    fn functions(&mut self, chunk: &Chunk) {
        for (name, line) in &chunk.function_calls {
            if let Some((_, reason)) = FORBIDDEN_FUNCTIONS.iter().find(|(forbidden, _)| forbidden == name) {
                self.report(*line, Rule::Forbidden, format!("{name} is forbidden: {reason}"));
            }
        }
    }

    fn loops(&mut self, analysis: &Analysis<'_>, source: &str) {
        const ADVICE: &str = "bound it by an ARGV value (a LIMIT), a constant, or a reply with a LIMIT/COUNT";
        for found in &analysis.chunk.loops {
            let problem = match &found.kind {
                LoopKind::Numeric { start, limit, step } => {
                    if let Some(step) = step.as_ref().filter(|step| number_literal(step) == Some(0.0)) {
                        Some(format!("the loop's step `{}` is 0, so it never ends", shown(source, step)))
                    } else {
                        [start, limit].into_iter().chain(step).find(|part| !analysis.value_bounded(part)).map(|part| {
                            format!("the loop runs to `{}`, which is not bounded: {ADVICE}", shown(source, part))
                        })
                    }
                }
                LoopKind::Generic { iterators } => (!analysis.iteration_bounded(iterators)).then(|| {
                    let shown_iterators = iterators.iter().map(|e| shown(source, e)).collect::<Vec<_>>().join(", ");
                    format!("the loop iterates over `{shown_iterators}`, which is not bounded: {ADVICE}")
                }),
                LoopKind::While(condition) => (!analysis.guards(condition, true)).then(|| {
                    format!(
                        "the loop `while {}` has no comparison with a bounded value that ends it: {ADVICE}",
                        shown(source, condition)
                    )
                }),
                LoopKind::Repeat(condition) => (!analysis.guards(condition, false)).then(|| {
                    format!(
                        "the loop `until {}` has no comparison with a bounded value that ends it: {ADVICE}",
                        shown(source, condition)
                    )
                }),
            };
            if let Some(problem) = problem {
                self.report(found.line, Rule::LoopBound, problem);
            }
        }
    }
}

/// The positions (1 = the first argument after the command name) of a call's
/// key arguments, within `args`.
fn key_positions(command: &Command, args: &[Expr]) -> Vec<usize> {
    let count = args.len();
    let tail_expands = args.last().is_some_and(Expr::is_multi_valued);
    let mut positions = BTreeSet::new();
    for spec in command.keys {
        match *spec {
            KeySpec::Span { first, last, step } => {
                let last_position = if last >= 0 {
                    first + usize::try_from(last).unwrap_or(0)
                } else {
                    // -1 is the last argument, -2 the one before it.
                    (count + 1).saturating_sub(usize::try_from(-last).unwrap_or(0))
                };
                positions.extend((first..=last_position).step_by(step.max(1)));
            }
            KeySpec::NumKeys { at } => match args.get(at - 1).and_then(number_literal) {
                Some(n) if n >= 0.0 => {
                    // A small whole number of keys: the conversion is exact.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let keys = n as usize;
                    positions.extend(at + 1..=at + keys);
                }
                _ => {
                    // Unknown count: every argument up to the first option word.
                    let options =
                        args.iter().skip(at).position(|e| literal(e).is_some()).unwrap_or(count - at.min(count));
                    positions.extend(at + 1..=at + options);
                }
            },
            KeySpec::Keyword { keyword, start_from } => {
                let found = args
                    .iter()
                    .enumerate()
                    .skip(start_from.saturating_sub(1))
                    .find(|(_, e)| literal(e).is_some_and(|word| word.eq_ignore_ascii_case(keyword)));
                if let Some((index, _)) = found {
                    let keyword_position = index + 1;
                    let remaining = count - keyword_position;
                    positions.extend(keyword_position + 1..=keyword_position + remaining.div_ceil(2));
                }
            }
        }
    }
    // Positions past the arguments written out are filled by a last argument
    // that expands to several values; without one they do not exist.
    positions
        .into_iter()
        .filter_map(|position| match position {
            0 => None,
            p if p <= count => Some(p),
            _ if tail_expands => Some(count),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Value tracing over one script's names (see the module documentation).
struct Analysis<'c> {
    chunk: &'c Chunk,
}

/// Library functions whose result is bounded when their arguments are.
fn is_library_function(name: &str) -> bool {
    const BUILTINS: &[&str] = &[
        "tonumber",
        "tostring",
        "type",
        "select",
        "unpack",
        "assert",
        "rawget",
        "redis.sha1hex",
        "redis.status_reply",
        "redis.error_reply",
    ];
    const LIBRARIES: &[&str] = &["math.", "string.", "table.", "cjson.", "cmsgpack.", "bit.", "struct."];
    BUILTINS.contains(&name) || LIBRARIES.iter().any(|library| name.starts_with(library))
}

impl Analysis<'_> {
    /// Follows a name through every value it is given; a name met again while
    /// following it (`n = n + 1`) adds nothing new, so it counts as true.
    fn name_is(&self, name: &str, seen: &mut Vec<String>, test: fn(&Self, &Expr, &mut Vec<String>) -> bool) -> bool {
        if seen.iter().any(|s| s == name) {
            return true;
        }
        let Some(values) = self.chunk.values.get(name).filter(|values| !values.is_empty()) else {
            return false;
        };
        seen.push(name.to_owned());
        let result = values.iter().all(|value| test(self, value, seen));
        seen.pop();
        result
    }

    fn comes_from_keys(&self, expr: &Expr) -> bool {
        self.comes_from_keys_in(expr, &mut Vec::new())
    }

    fn comes_from_keys_in(&self, expr: &Expr, seen: &mut Vec<String>) -> bool {
        match &expr.kind {
            ExprKind::Index(base, _) => matches!(&base.kind, ExprKind::Name(name) if name == "KEYS"),
            ExprKind::Call(callee, args) => {
                matches!(callee.dotted_name().as_deref(), Some("unpack" | "table.unpack"))
                    && args.first().is_some_and(|table| matches!(&table.kind, ExprKind::Name(name) if name == "KEYS"))
            }
            ExprKind::Name(name) if name != "KEYS" => self.name_is(name, seen, Self::comes_from_keys_in),
            ExprKind::Paren(inner) => self.comes_from_keys_in(inner, seen),
            // `cond and KEYS[1] or KEYS[2]`: either value may be the result.
            ExprKind::Binary(left, "or", right) => {
                self.comes_from_keys_in(left, seen) && self.comes_from_keys_in(right, seen)
            }
            ExprKind::Binary(_, "and", right) => self.comes_from_keys_in(right, seen),
            _ => false,
        }
    }

    fn value_bounded(&self, expr: &Expr) -> bool {
        self.value_bounded_in(expr, &mut Vec::new())
    }

    fn value_bounded_in(&self, expr: &Expr, seen: &mut Vec<String>) -> bool {
        match &expr.kind {
            ExprKind::Constant | ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Vararg => true,
            ExprKind::Function => false,
            ExprKind::Name(name) => {
                name == "KEYS" || name == "ARGV" || self.name_is(name, seen, Self::value_bounded_in)
            }
            ExprKind::Index(base, _) => self.value_bounded_in(base, seen),
            ExprKind::Call(callee, args) => self.call_bounded(callee, args, seen),
            ExprKind::Unary("#", inner) => self.size_bounded_in(inner, seen),
            ExprKind::Unary(_, inner) | ExprKind::Paren(inner) => self.value_bounded_in(inner, seen),
            ExprKind::Binary(left, _, right) => self.value_bounded_in(left, seen) && self.value_bounded_in(right, seen),
            ExprKind::Table(items) => items.iter().all(|item| self.value_bounded_in(item, seen)),
        }
    }

    /// A call's result as a value: never a Redis reply; a library function of
    /// bounded arguments; `math.min` of anything bounded.
    fn call_bounded(&self, callee: &Expr, args: &[Expr], seen: &mut Vec<String>) -> bool {
        match callee.dotted_name().as_deref() {
            Some("math.min") => args.iter().any(|arg| self.value_bounded_in(arg, seen)),
            Some(name) if is_library_function(name) => args.iter().all(|arg| self.value_bounded_in(arg, seen)),
            _ => false,
        }
    }

    fn size_bounded_in(&self, expr: &Expr, seen: &mut Vec<String>) -> bool {
        match &expr.kind {
            ExprKind::Constant | ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Vararg => true,
            ExprKind::Function => false,
            ExprKind::Name(name) => name == "KEYS" || name == "ARGV" || self.name_is(name, seen, Self::size_bounded_in),
            ExprKind::Index(base, _) => self.size_bounded_in(base, seen),
            ExprKind::Call(callee, args) => match callee.dotted_name().as_deref() {
                Some("redis.call" | "redis.pcall") => self.reply_bounded(args, seen),
                _ => self.call_bounded(callee, args, seen),
            },
            ExprKind::Unary(_, inner) | ExprKind::Paren(inner) => self.value_bounded_in(inner, seen),
            ExprKind::Binary(left, _, right) => self.value_bounded_in(left, seen) && self.value_bounded_in(right, seen),
            // Built in the script: only its last item may expand to many values.
            ExprKind::Table(items) => match items.last() {
                Some(last) if last.is_multi_valued() => self.size_bounded_in(last, seen),
                _ => true,
            },
        }
    }

    /// Whether the reply of `redis.call(args…)` has a bounded number of elements.
    fn reply_bounded(&self, call_args: &[Expr], seen: &mut Vec<String>) -> bool {
        let Some(name) = call_args.first().and_then(literal).map(str::to_ascii_uppercase) else { return false };
        let (command, args) = match commands::find(&name) {
            Some(command) if command.access == Access::Container => {
                let sub = call_args.get(1).and_then(literal).map(str::to_ascii_uppercase).unwrap_or_default();
                match commands::find(&format!("{name}|{sub}")) {
                    Some(found) => (found, call_args.get(1..).unwrap_or_default()),
                    None => return false,
                }
            }
            Some(command) => (command, &call_args[1..]),
            None => return false,
        };
        // Argument `position` (1 = first after the command name).
        let argument = |position: usize| args.get(position.wrapping_sub(1));
        let keyword_at = |keyword: &str| {
            args.iter().position(|arg| literal(arg).is_some_and(|word| word.eq_ignore_ascii_case(keyword)))
        };
        let count_bounded = |this: &Self, count: Option<&Expr>, seen: &mut Vec<String>| {
            count.is_some_and(|count| {
                number_literal(count).is_none_or(|n| n >= 0.0) && this.value_bounded_in(count, seen)
            })
        };
        let limited =
            |this: &Self, keyword: &str, offset: usize, absent_bounded: bool, seen: &mut Vec<String>| match keyword_at(
                keyword,
            ) {
                Some(index) => count_bounded(this, args.get(index + offset), seen),
                None => absent_bounded,
            };
        match command.reply {
            ReplySize::Bounded => true,
            ReplySize::Whole => false,
            ReplySize::CountAt(position) => argument(position).is_none_or(|count| self.value_bounded_in(count, seen)),
            ReplySize::IndexRange => {
                if keyword_at("BYSCORE").is_some() || keyword_at("BYLEX").is_some() {
                    return limited(self, "LIMIT", 2, false, seen);
                }
                let (Some(start), Some(stop)) = (argument(2), argument(3)) else { return false };
                // `0 -1`, `5 -1`: from a fixed place to the end, however long.
                let whole = matches!(
                    (number_literal(start), number_literal(stop)),
                    (Some(a), Some(b)) if a >= 0.0 && b < 0.0
                );
                !whole && self.value_bounded_in(start, seen) && self.value_bounded_in(stop, seen)
            }
            ReplySize::Option { keyword, offset, absent_bounded } => {
                limited(self, keyword, offset, absent_bounded, seen)
            }
            ReplySize::PendingCount => {
                let idle = argument(3).and_then(literal).is_some_and(|word| word.eq_ignore_ascii_case("IDLE"));
                count_bounded(self, argument(if idle { 7 } else { 5 }), seen)
            }
        }
    }

    fn iteration_bounded(&self, iterators: &[Expr]) -> bool {
        let seen = &mut Vec::new();
        match iterators.first().map(|e| &e.kind) {
            Some(ExprKind::Call(callee, args)) => match callee.dotted_name().as_deref() {
                Some("ipairs" | "pairs") => args.first().is_some_and(|table| self.size_bounded_in(table, seen)),
                Some("string.gmatch") => args.first().is_some_and(|text| self.value_bounded_in(text, seen)),
                _ => false,
            },
            Some(ExprKind::Name(name)) if name == "next" => {
                iterators.get(1).is_some_and(|table| self.size_bounded_in(table, seen))
            }
            _ => false,
        }
    }

    /// True when `condition` ends the loop through a comparison of bounded
    /// values: for a `while` (`continues`) the loop goes on while it holds, for
    /// `repeat … until` it stops when it holds.
    fn guards(&self, condition: &Expr, continues: bool) -> bool {
        match &condition.kind {
            ExprKind::Paren(inner) => self.guards(inner, continues),
            ExprKind::Binary(left, "and", right) if continues => {
                self.guards(left, continues) || self.guards(right, continues)
            }
            ExprKind::Binary(left, "and", right) => self.guards(left, continues) && self.guards(right, continues),
            ExprKind::Binary(left, "or", right) if continues => {
                self.guards(left, continues) && self.guards(right, continues)
            }
            ExprKind::Binary(left, "or", right) => self.guards(left, continues) || self.guards(right, continues),
            ExprKind::Binary(left, "<" | "<=" | ">" | ">=", right) => {
                self.value_bounded(left) && self.value_bounded(right)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
