//! The manifest of the bundled scripts: what an auditor diffs between releases
//! and what an application can log or check at start-up.
//!
//! It is built from the registry ([`script::all`]) and each
//! script's header comment, so it says exactly what the binary will send.
//!
//! ```
//! let manifest = redisext::manifest::manifest();
//! assert_eq!(manifest["crate"], "redisext");
//! let incr = manifest["scripts"]
//!     .as_array()
//!     .and_then(|scripts| scripts.iter().find(|s| s["name"] == "counter/incr"))
//!     .expect("counter/incr is bundled");
//! assert_eq!(incr["sha1"], redisext::Script::bundled("counter/incr").sha1());
//! assert_eq!(incr["read_only"], false);
//! assert!(incr["commands"].as_array().unwrap().iter().any(|command| command == "INCRBY"));
//! ```

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::script::{self, Param, Script};

/// The manifest of every bundled script, as JSON:
///
/// ```text
/// { "crate": "redisext", "version": "0.1.0",
///   "digest": SHA1 over the lines "<name> <sha1>\n" of every script, in name order,
///   "scripts": [ { "name", "sha1", "read_only", "allow_oom", "flags", "summary",
///                  "keys": [{"index", "name", "description"}], "args": [same],
///                  "returns", "worst_case", "commands", "lines", "bytes" }, … ] }
/// ```
///
/// `commands` lists the Redis commands the script calls (from its source);
/// `name` of a key or argument is the start of its description, up to the first
/// comma, parenthesis or colon. Object keys come out sorted, so two manifests
/// diff line by line.
pub fn manifest() -> Value {
    json!({
        "crate": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "digest": digest(),
        "scripts": script::all().map(entry).collect::<Vec<_>>(),
    })
}

/// The manifest, pretty-printed, with a final newline.
pub fn manifest_json() -> String {
    // A `Value` always serializes.
    let mut text = serde_json::to_string_pretty(&manifest()).unwrap_or_default();
    text.push('\n');
    text
}

/// One SHA1 that changes when any bundled script (or its name) changes: over
/// the lines `<name> <sha1>\n` of every script, in name order.
///
/// ```
/// assert_eq!(redisext::manifest::digest().len(), 40);
/// ```
pub fn digest() -> String {
    let mut hasher = sha1_smol::Sha1::new();
    for script in script::all() {
        hasher.update(format!("{} {}\n", script.name(), script.sha1()).as_bytes());
    }
    hasher.digest().to_string()
}

/// One script's manifest entry.
pub fn entry(script: Script) -> Value {
    let header = script.header();
    let slots = |params: &[Param]| {
        params
            .iter()
            .map(|param| {
                json!({ "index": param.index, "name": param.name, "description": param.description,
                        "variadic": param.variadic })
            })
            .collect::<Vec<_>>()
    };
    let mut flags = Vec::new();
    if script.is_read_only() {
        flags.push("no-writes");
    }
    if script.allows_oom() {
        flags.push("allow-oom");
    }
    json!({
        "name": script.name(),
        "sha1": script.sha1(),
        "read_only": script.is_read_only(),
        "allow_oom": script.allows_oom(),
        "flags": flags,
        "summary": header.summary,
        "keys": slots(&header.keys),
        "args": slots(&header.args),
        "returns": header.returns,
        "worst_case": header.worst_case,
        "commands": commands_called(script.source()),
        "lines": script.source().lines().count(),
        "bytes": script.source().len(),
    })
}

/// Redis commands whose first argument is a subcommand: listed as `XGROUP CREATE`.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT", "PUBSUB",
    "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

/// The Redis commands a script calls (`redis.call`/`redis.pcall` with a string
/// literal for the command's name), upper case, sorted, without duplicates, with
/// the subcommand of a container (`XGROUP CREATE`). Comments and strings are
/// skipped; a name that is not a literal is left out.
///
/// ```
/// use redisext::manifest::commands_called;
/// let source = "#!lua\n-- redis.call('DEL', KEYS[1]) is not called\n\
///               local n = redis.call('llen', KEYS[1])\n\
///               redis.pcall(\"XGROUP\", 'CREATE', KEYS[1], 'g', '$')\n\
///               return redis.call('LLEN', KEYS[1]) + n\n";
/// assert_eq!(commands_called(source), ["LLEN", "XGROUP CREATE"]);
/// ```
pub fn commands_called(source: &str) -> Vec<String> {
    let tokens = lua_tokens(source);
    let mut names = BTreeSet::new();
    for (at, window) in tokens.windows(5).enumerate() {
        let [
            LuaToken::Word("redis"),
            LuaToken::Mark(b'.'),
            LuaToken::Word("call" | "pcall"),
            LuaToken::Mark(b'('),
            LuaToken::Text(name),
        ] = window
        else {
            continue;
        };
        let name = name.to_ascii_uppercase();
        let subcommand = match tokens.get(at + 5..at + 7) {
            Some([LuaToken::Mark(b','), LuaToken::Text(sub)]) if CONTAINERS.contains(&name.as_str()) => {
                Some(sub.to_ascii_uppercase())
            }
            _ => None,
        };
        names.insert(match subcommand {
            Some(sub) => format!("{name} {sub}"),
            None => name,
        });
    }
    names.into_iter().collect()
}

/// A token of Lua source, as far as [`commands_called`] needs: names and numbers
/// are words, string literals their raw text, anything else a one-byte mark.
#[derive(Debug, PartialEq)]
enum LuaToken<'a> {
    Word(&'a str),
    Text(&'a str),
    Mark(u8),
}

fn lua_tokens(source: &str) -> Vec<LuaToken<'_>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    // Redis strips a `#!` first line before compiling it.
    let mut i = if bytes.starts_with(b"#!") { source.find('\n').unwrap_or(bytes.len()) } else { 0 };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if bytes[i..].starts_with(b"--") {
            i = match long_bracket(bytes, i + 2) {
                Some((_, end)) => end,
                None => source[i..].find('\n').map_or(bytes.len(), |n| i + n),
            };
        } else if let Some((text, end)) = long_bracket(bytes, i) {
            tokens.push(LuaToken::Text(&source[text]));
            i = end;
        } else if c == b'"' || c == b'\'' {
            let start = i + 1;
            i = start;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            if i >= bytes.len() {
                break; // an unfinished string: not Lua, nothing more to read
            }
            tokens.push(LuaToken::Text(&source[start..i]));
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push(LuaToken::Word(&source[start..i]));
        } else {
            tokens.push(LuaToken::Mark(c));
            // One mark per character, also for a multi-byte one.
            i += source[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    tokens
}

/// A long bracket (`[[…]]`, `[==[…]==]`) opening at `at`: its text and the index
/// past its end (the end of the source when it is not closed).
fn long_bracket(bytes: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let rest = bytes.get(at..)?.strip_prefix(b"[")?;
    let level = rest.iter().take_while(|&&b| b == b'=').count();
    if rest.get(level) != Some(&b'[') {
        return None;
    }
    let start = at + level + 2;
    let mut closing = vec![b']'];
    closing.extend(std::iter::repeat_n(b'=', level));
    closing.push(b']');
    match bytes[start..].windows(closing.len()).position(|w| w == closing.as_slice()) {
        Some(offset) => Some((start..start + offset, start + offset + closing.len())),
        None => Some((start..bytes.len(), bytes.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_in_the_manifest_with_its_header() {
        let manifest = manifest();
        let scripts = manifest["scripts"].as_array().expect("an array");
        assert_eq!(scripts.len(), script::all().len());
        for (entry, script) in scripts.iter().zip(script::all()) {
            let header = script.header();
            assert_eq!(entry["name"], script.name());
            assert_eq!(entry["sha1"], script.sha1());
            assert_eq!(entry["read_only"], script.is_read_only());
            assert_eq!(entry["keys"].as_array().map(Vec::len), Some(header.keys.len()), "{}", script.name());
            assert_eq!(entry["args"].as_array().map(Vec::len), Some(header.args.len()), "{}", script.name());
            assert!(!entry["returns"].as_str().unwrap_or_default().is_empty(), "{}", script.name());
            assert!(!entry["worst_case"].as_str().unwrap_or_default().is_empty(), "{}", script.name());
            assert!(!entry["commands"].as_array().is_none_or(Vec::is_empty), "{}", script.name());
        }
        let rename = scripts.iter().find(|s| s["name"] == "key/rename").expect("key/rename");
        assert_eq!(rename["commands"], json!(["EXISTS", "RENAME"]));
        assert_eq!(rename["keys"][1]["name"], "new_key");
        assert_eq!(rename["flags"], json!([]));
        let get = scripts.iter().find(|s| s["name"] == "map/get").expect("map/get");
        assert_eq!(get["flags"], json!(["no-writes"]));
    }

    #[test]
    fn commands_called_lists_each_once_and_skips_comments_and_strings() {
        let source = "#!lua\nredis.call('get', KEYS[1])\nredis.call('XGROUP', 'CREATE', KEYS[1], 'g', '$')\n\
                      redis.call('GET', KEYS[1])\nreturn redis.call('TIME')\n";
        assert_eq!(commands_called(source), ["GET", "TIME", "XGROUP CREATE"]);
        let hidden = "#!lua\n--[==[ redis.call('DEL', KEYS[1]) ]==]\nlocal s = 'redis.call(\\'SET\\', k)'\n\
                      local t = [[redis.call('HSET', k)]]\nreturn redis.pcall ( \"INCR\" , KEYS[1])\n";
        assert_eq!(commands_called(hidden), ["INCR"]);
        assert_eq!(commands_called("local name = 'GET'\nreturn redis.call(name, KEYS[1])"), Vec::<String>::new());
        assert_eq!(commands_called("return redis.call('OBJECT', 'encoding', KEYS[1])"), ["OBJECT ENCODING"]);
        // Unfinished strings and comments end the scan, without a panic.
        assert!(commands_called("redis.call('GET").is_empty());
        assert!(commands_called("--[[ open").is_empty());
    }

    #[test]
    fn the_digest_covers_names_and_sha1s() {
        let lines: String = script::all().map(|s| format!("{} {}\n", s.name(), s.sha1())).collect();
        assert_eq!(digest(), sha1_smol::Sha1::from(lines.as_bytes()).digest().to_string());
        assert_eq!(manifest()["digest"], digest());
        assert!(manifest_json().ends_with("}\n"));
    }
}
