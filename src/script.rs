//! The script registry: every file under `lua/`, embedded in the binary with its
//! SHA1 computed at build time.
//!
//! A script's name is its path under `lua/` without `.lua` (`counter/incr`). Model
//! code refers to scripts through the handles declared at the bottom of this file;
//! naming a file that does not exist is a compile error, and a test fails when a
//! file under `lua/` has no handle.

use std::sync::OnceLock;

use include_dir::{Dir, include_dir};

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

/// A script's header comment, as every bundled script has it:
///
/// ```text
/// --[[ pool/checkout
///   Summary sentence(s).
///   KEYS[1]  description
///   ARGV[1]  description
///   Returns  description
///   Worst case  description
/// ]]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The name on the opening line (`--[[ pool/checkout`).
    pub name: String,
    /// The summary lines, joined with spaces.
    pub summary: String,
    /// `KEYS[i]` lines: index and description.
    pub keys: Vec<(usize, String)>,
    /// `ARGV[i]` lines: index and description.
    pub args: Vec<(usize, String)>,
    /// The `Returns` line.
    pub returns: String,
    /// The `Worst case` line.
    pub worst_case: String,
    /// The line number (1-based) of each labelled entry, for lint messages.
    pub lines: Vec<(String, usize)>,
}

impl Header {
    /// Parses the header comment of a script's source. Missing parts stay empty.
    pub fn parse(source: &str) -> Header {
        let mut header = Header::default();
        let mut lines = source.lines().enumerate().skip_while(|(_, line)| !line.trim_start().starts_with("--[["));
        let Some((_, opening)) = lines.next() else { return header };
        header.name = opening.trim_start().trim_start_matches("--[[").trim().to_owned();
        let mut last: Option<&mut String> = None;
        let mut summary = Vec::new();
        for (index, raw) in lines {
            let line = raw.trim();
            if line.starts_with("]]") {
                break;
            }
            let number = index + 1;
            if let Some((slot, text)) = indexed(line, "KEYS[") {
                header.keys.push((slot, text));
                header.lines.push((format!("KEYS[{slot}]"), number));
                last = header.keys.last_mut().map(|(_, text)| text);
            } else if let Some((slot, text)) = indexed(line, "ARGV[") {
                header.args.push((slot, text));
                header.lines.push((format!("ARGV[{slot}]"), number));
                last = header.args.last_mut().map(|(_, text)| text);
            } else if let Some(text) = line.strip_prefix("Returns") {
                header.returns = text.trim().to_owned();
                header.lines.push(("Returns".to_owned(), number));
                last = Some(&mut header.returns);
            } else if let Some(text) = line.strip_prefix("Worst case") {
                header.worst_case = text.trim().to_owned();
                header.lines.push(("Worst case".to_owned(), number));
                last = Some(&mut header.worst_case);
            } else if let Some(text) = last.as_deref_mut() {
                // A continuation line of the entry above.
                text.push(' ');
                text.push_str(line);
            } else if !line.is_empty() {
                summary.push(line);
            }
        }
        header.summary = summary.join(" ");
        header
    }
}

/// Parses `KEYS[3]  text` into `(3, "text")`.
fn indexed(line: &str, prefix: &str) -> Option<(usize, String)> {
    let rest = line.strip_prefix(prefix)?;
    let (number, text) = rest.split_once(']')?;
    Some((number.parse().ok()?, text.trim().to_owned()))
}

macro_rules! handles {
    ($($handle:ident = $name:literal,)*) => {
        $(pub(crate) static $handle: Script = Script::bundled($name);)*

        /// Every handle the crate declares, for the test that no file is orphaned.
        #[cfg(test)]
        pub(crate) static HANDLES: &[&Script] = &[$(&$handle),*];
    };
}

handles! {
    BOUNDED_QUEUE_POP = "bounded_queue/pop",
    BOUNDED_QUEUE_PUSH = "bounded_queue/push",
    BOUNDED_QUEUE_SETTINGS = "bounded_queue/settings",
    BOUNDED_QUEUE_SIZE = "bounded_queue/size",
    COMPOUND_CLEAR = "compound/clear",
    COUNTER_GET = "counter/get",
    COUNTER_INCR = "counter/incr",
    HASH_MAP_GET = "hash_map/get",
    HASH_MAP_REMOVE = "hash_map/remove",
    HASH_MAP_SET = "hash_map/set",
    KEY_EXPIRE = "key/expire",
    KEY_PERSIST = "key/persist",
    KEY_RENAME = "key/rename",
    KEY_TTL = "key/ttl",
    LOCK_ACQUIRE = "lock/acquire",
    LOCK_EXTEND = "lock/extend",
    LOCK_HOLDS = "lock/holds",
    LOCK_LOCKED = "lock/locked",
    LOCK_RELEASE = "lock/release",
    MAP_DECR = "map/decr",
    MAP_EXISTS = "map/exists",
    MAP_GET = "map/get",
    MAP_INCR = "map/incr",
    MAP_REMOVE = "map/remove",
    MAP_SET = "map/set",
    POOL_CONTAINS = "pool/contains",
    POOL_MEMBERS = "pool/members",
    POOL_POP = "pool/pop",
    POOL_PUSH = "pool/push",
    PRIORITY_QUEUE_POP = "priority_queue/pop",
    PRIORITY_QUEUE_PUSH = "priority_queue/push",
    QUEUE_ITEMS = "queue/items",
    QUEUE_POP = "queue/pop",
    QUEUE_PUSH = "queue/push",
    QUEUE_SIZE = "queue/size",
    RATE_LIMITER_ACQUIRE = "rate_limiter/acquire",
    RELIABLE_QUEUE_ACK = "reliable_queue/ack",
    RELIABLE_QUEUE_COUNTS = "reliable_queue/counts",
    RELIABLE_QUEUE_EXTEND = "reliable_queue/extend",
    RELIABLE_QUEUE_NACK = "reliable_queue/nack",
    RELIABLE_QUEUE_POP = "reliable_queue/pop",
    RELIABLE_QUEUE_POP_DEAD = "reliable_queue/pop_dead",
    RELIABLE_QUEUE_PUSH = "reliable_queue/push",
    RESOURCE_POOL_ADD = "resource_pool/add",
    RESOURCE_POOL_CHECKIN = "resource_pool/checkin",
    RESOURCE_POOL_CHECKOUT = "resource_pool/checkout",
    RESOURCE_POOL_COUNTS = "resource_pool/counts",
    RESOURCE_POOL_EXTEND = "resource_pool/extend",
    RESOURCE_POOL_REMOVE = "resource_pool/remove",
    SEMAPHORE_ACQUIRE = "semaphore/acquire",
    SEMAPHORE_EXTEND = "semaphore/extend",
    SEMAPHORE_HELD = "semaphore/held",
    SEMAPHORE_RELEASE = "semaphore/release",
    SORTED_SET_ADD = "sorted_set/add",
    SORTED_SET_CLEAN = "sorted_set/clean",
    SORTED_SET_CLEAN_BY_SCORE = "sorted_set/clean_by_score",
    SORTED_SET_CONTAINS = "sorted_set/contains",
    SORTED_SET_LENGTH = "sorted_set/length",
    SORTED_SET_MEMBERS = "sorted_set/members",
    SORTED_SET_MEMBERS_BY_SCORE = "sorted_set/members_by_score",
    SORTED_SET_REM = "sorted_set/rem",
    SORTED_SET_TRUNCATE = "sorted_set/truncate",
    STACK_POP = "stack/pop",
    STACK_PUSH = "stack/push",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_file_has_a_handle() {
        for script in all() {
            assert!(
                HANDLES.iter().any(|handle| **handle == script),
                "lua/{}.lua is used by no handle in src/script.rs",
                script.name()
            );
        }
        assert_eq!(HANDLES.len(), all().len(), "two handles name the same file");
    }

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
            "#!lua\n--[[ pool/checkout\n  Move one member.\n  More words.\n  KEYS[1]  idle set\n  KEYS[2]  leased zset\n  ARGV[1]  lease, ms\n  Returns  {member, deadline}\n    or nil\n  Worst case  O(log N)\n]]\nreturn 1\n",
        );
        assert_eq!(header.name, "pool/checkout");
        assert_eq!(header.summary, "Move one member. More words.");
        assert_eq!(header.keys, vec![(1, "idle set".to_owned()), (2, "leased zset".to_owned())]);
        assert_eq!(header.args, vec![(1, "lease, ms".to_owned())]);
        assert_eq!(header.returns, "{member, deadline} or nil");
        assert_eq!(header.worst_case, "O(log N)");
        assert_eq!(header.lines[0], ("KEYS[1]".to_owned(), 5));
    }
}
