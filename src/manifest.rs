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

use serde_json::{Value, json};

use crate::lint;
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
        "commands": lint::commands_called(script.source()),
        "lines": script.source().lines().count(),
        "bytes": script.source().len(),
    })
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
    fn the_digest_covers_names_and_sha1s() {
        let lines: String = script::all().map(|s| format!("{} {}\n", s.name(), s.sha1())).collect();
        assert_eq!(digest(), sha1_smol::Sha1::from(lines.as_bytes()).digest().to_string());
        assert_eq!(manifest()["digest"], digest());
        assert!(manifest_json().ends_with("}\n"));
    }
}
