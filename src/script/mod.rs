//! The script registry: every file under `lua/`, embedded in the binary with its
//! SHA1 computed at build time.
//!
//! A script's name is its path under `lua/` without `.lua` (`counter/incr`). The
//! crate calls each script through the struct `build.rs` generates from its
//! header ([`Header`]): `call::counter::Incr` for `lua/counter/incr.lua`.
//!
//! This module imports nothing else of the crate.

mod header;

use std::sync::OnceLock;

use include_dir::{Dir, include_dir};

pub use header::{Header, Param, is_name};

/// The audited sources, embedded byte for byte.
static LUA: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/lua");

/// What build.rs learned about one file under `lua/`.
#[derive(Debug)]
pub(crate) struct Facts {
    /// The position in `BUNDLED`.
    index: usize,
    name: &'static str,
    sha1: &'static str,
    read_only: bool,
    allow_oom: bool,
}

include!(concat!(env!("OUT_DIR"), "/bundled_scripts.rs"));

/// One bundled Lua script: its name, source, SHA1 and flags.
///
/// ```
/// use redisext::Script;
/// let incr = Script::bundled("counter/incr");
/// assert_eq!(incr.sha1().len(), 40);
/// assert!(!incr.is_read_only());
/// assert!(incr.source().starts_with("#!lua"));
/// ```
///
/// Naming a script that is not bundled does not compile when the handle is a
/// `static` (or `const`), because the lookup runs at compile time:
///
/// ```compile_fail,E0080
/// static MISSING: redisext::Script = redisext::Script::bundled("counter/no_such_op");
/// ```
#[derive(Clone, Copy)]
pub struct Script {
    facts: &'static Facts,
}

impl Script {
    /// The bundled script at `lua/<name>.lua`.
    ///
    /// # Panics
    ///
    /// When no such script is bundled. In a `static` or `const` that is a compile
    /// error, which is how the crate's own handles are declared; at run time use
    /// [`find`] instead.
    pub const fn bundled(name: &str) -> Script {
        let mut i = 0;
        while i < BUNDLED.len() {
            if str_eq(BUNDLED[i].name, name) {
                return Script { facts: &BUNDLED[i] };
            }
            i += 1;
        }
        panic!("no such script under lua/")
    }

    /// The script's name, `model/op`.
    pub fn name(&self) -> &'static str {
        self.facts.name
    }

    /// The model part of the name (`counter` in `counter/incr`).
    pub fn model(&self) -> &'static str {
        self.facts.name.split_once('/').map_or(self.facts.name, |(model, _)| model)
    }

    /// The hex SHA1 of the source, as `SCRIPT LOAD` answers it.
    pub fn sha1(&self) -> &'static str {
        self.facts.sha1
    }

    /// True for `#!lua flags=no-writes` scripts: they may run on replicas and with
    /// `EVALSHA_RO`.
    pub fn is_read_only(&self) -> bool {
        self.facts.read_only
    }

    /// True for scripts flagged `allow-oom` (they only take data away).
    pub fn allows_oom(&self) -> bool {
        self.facts.allow_oom
    }

    /// The exact bytes sent with `SCRIPT LOAD`, shebang included.
    pub fn source(&self) -> &'static str {
        // Looked up in the embedded directory once, then by index: pipelines send
        // a script's source with every batch.
        static SOURCES: OnceLock<Vec<&'static str>> = OnceLock::new();
        let sources = SOURCES.get_or_init(|| BUNDLED.iter().map(embedded_source).collect());
        sources.get(self.facts.index).copied().unwrap_or("")
    }

    /// `EVALSHA` (`EVALSHA_RO` for a read-only script) and the SHA1, as the first
    /// two arguments of a command in RESP: written once per script, copied into
    /// every call's command.
    pub(crate) fn evalsha_resp(&self) -> &'static [u8] {
        static HEADS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let heads = HEADS.get_or_init(|| {
            BUNDLED
                .iter()
                .map(|facts| {
                    let name = if facts.read_only { "EVALSHA_RO" } else { "EVALSHA" };
                    format!("${}\r\n{name}\r\n${}\r\n{}\r\n", name.len(), facts.sha1.len(), facts.sha1).into_bytes()
                })
                .collect()
        });
        heads.get(self.facts.index).map_or(&[], Vec::as_slice)
    }

    /// The header comment parsed: summary, keys, arguments, return value, cost.
    pub fn header(&self) -> Header {
        Header::parse(self.source())
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("name", &self.name()).field("sha1", &self.sha1()).finish()
    }
}

impl std::fmt::Display for Script {
    /// The script's name, `model/op`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Script {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.facts, other.facts)
    }
}

impl Eq for Script {}

/// A script's bytes as `include_dir` embedded them. build.rs listed the same
/// directory in the same build, so the file is there; an empty source could never
/// match the SHA1, and the dispatcher reports that as `Error::ScriptMismatch`
/// rather than panicking.
fn embedded_source(facts: &'static Facts) -> &'static str {
    let path = format!("{}.lua", facts.name);
    LUA.get_file(&path).and_then(|file| file.contents_utf8()).unwrap_or("")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Every bundled script, sorted by name.
pub fn all() -> impl ExactSizeIterator<Item = Script> {
    BUNDLED.iter().map(|facts| Script { facts })
}

/// The bundled script called `name` (`counter/incr`), if there is one.
pub fn find(name: &str) -> Option<Script> {
    all().find(|script| script.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_is_computed_over_the_embedded_bytes() {
        for script in all() {
            assert!(!script.source().is_empty(), "{} has no embedded source", script.name());
            let digest = sha1_smol::Sha1::from(script.source().as_bytes()).digest().to_string();
            assert_eq!(digest, script.sha1(), "{}", script.name());
        }
    }

    #[test]
    fn headers_parse() {
        let header = Header::parse(
            "#!lua\n--[[ pool/checkout\n  Move one member.\n  More words.\n  KEYS[1]  idle  set\n  KEYS[2]  leased  zset\n  ARGV[1]  lease_ms  lease, ms\n  ARGV[2..]  rest  more\n  Returns  {member, deadline}\n    or nil\n  Worst case  O(log N)\n]]\nreturn 1\n",
        );
        assert_eq!(header.name, "pool/checkout");
        assert_eq!(header.summary, "Move one member. More words.");
        let param = |index, name: &str, description: &str, variadic| Param {
            index,
            name: name.to_owned(),
            description: description.to_owned(),
            variadic,
        };
        assert_eq!(header.keys, vec![param(1, "idle", "set", false), param(2, "leased", "zset", false)]);
        assert_eq!(header.args, vec![param(1, "lease_ms", "lease, ms", false), param(2, "rest", "more", true)]);
        assert_eq!(header.returns, "{member, deadline} or nil");
        assert_eq!(header.worst_case, "O(log N)");
        assert_eq!(header.lines[0], ("KEYS[1]".to_owned(), 5));
    }
}
