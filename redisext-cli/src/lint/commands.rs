//! What the lint knows about each Redis command a script may call: whether it
//! writes, which arguments are key names, how large its reply can be — and which
//! commands a script must never call.
//!
//! The access and key positions below are Redis 7's own (whether a
//! `flags=no-writes` script may call the command, and the `COMMAND INFO` key
//! specifications); a test compares every entry with a real server's answer.

/// What a command does to the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only: allowed in a `flags=no-writes` script.
    Read,
    /// Writes (or replicates something): refused in a `flags=no-writes` script.
    Write,
    /// Container of subcommands (`XGROUP CREATE`): look up `NAME|SUB` instead.
    Container,
    /// Never called by a redisext script, for the reason given.
    Forbidden(&'static str),
}

/// Where one group of key names is among a command's arguments (argument 1 is
/// the first after the command name), as Redis's key specifications say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// From argument `first`, every `step`-th up to `last` (`last` counts from
    /// `first`; -1 is the last argument).
    Span { first: usize, last: i64, step: usize },
    /// Argument `at` gives a number of keys, which follow it.
    NumKeys { at: usize },
    /// The keys start after `keyword` (searched from argument `start_from`) and
    /// make up the first half of the arguments left (`XREAD ... STREAMS k1 k2 id1 id2`).
    Keyword { keyword: &'static str, start_from: usize },
}

/// How many elements a command's reply can have, for loops over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplySize {
    /// A fixed number, or one per argument (`HMGET`, `TIME`).
    Bounded,
    /// The whole collection (`SMEMBERS`, `HGETALL`): as large as the data.
    Whole,
    /// One element, or the count given as argument `at` (`LPOP key [count]`).
    CountAt(usize),
    /// Arguments 2 and 3 are a start and a stop index (`LRANGE`); with `BYSCORE`
    /// or `BYLEX` (`ZRANGE`) it needs a `LIMIT` instead.
    IndexRange,
    /// Bounded by the value `offset` places after `keyword` (`LIMIT offset count`,
    /// `COUNT n`); without the keyword it is bounded only when `absent_bounded`.
    Option { keyword: &'static str, offset: usize, absent_bounded: bool },
    /// `XPENDING`: a summary of every consumer, or in its extended form (`start
    /// end count`) bounded by its count.
    PendingCount,
}

/// One command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Command {
    pub(crate) name: &'static str,
    pub(crate) access: Access,
    pub(crate) keys: &'static [KeySpec],
    pub(crate) reply: ReplySize,
}

/// The command called `name` (upper case; `XGROUP|CREATE` for a subcommand).
pub(crate) fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|command| command.name == name)
}

/// Every command the lint knows.
#[cfg(test)]
pub(crate) fn all() -> &'static [Command] {
    COMMANDS
}

use Access::{Read, Write};
use ReplySize::{Bounded, CountAt, IndexRange, PendingCount, Whole};

const fn command(name: &'static str, access: Access, keys: &'static [KeySpec], reply: ReplySize) -> Command {
    Command { name, access, keys, reply }
}

const fn forbidden(name: &'static str, reason: &'static str) -> Command {
    Command { name, access: Access::Forbidden(reason), keys: &[], reply: Bounded }
}

const fn container(name: &'static str) -> Command {
    Command { name, access: Access::Container, keys: &[], reply: Bounded }
}

const fn at(first: usize) -> KeySpec {
    KeySpec::Span { first, last: 0, step: 1 }
}

const fn span(first: usize, last: i64, step: usize) -> KeySpec {
    KeySpec::Span { first, last, step }
}

const fn numkeys(at: usize) -> KeySpec {
    KeySpec::NumKeys { at }
}

const fn keyword(keyword: &'static str, start_from: usize) -> KeySpec {
    KeySpec::Keyword { keyword, start_from }
}

const fn limited(keyword: &'static str, offset: usize, absent_bounded: bool) -> ReplySize {
    ReplySize::Option { keyword, offset, absent_bounded }
}

const KEY_NAMES: &str = "it yields key names from the keyspace, but a script may touch only the keys given in KEYS";
const ADMIN: &str = "it administers the server, which no data model script may do";
const SCRIPTS: &str = "it runs or manages scripts, which Redis refuses inside a script";
const BLOCKING: &str = "it is a blocking command, which a script cannot run as such: use its non-blocking form";
const TRANSACTION: &str = "it belongs to transactions or replication waits, which Redis refuses inside a script";
const WHOLE_DATABASE: &str = "it acts on a whole database, not on the keys given in KEYS";

static COMMANDS: &[Command] = &[
    command("APPEND", Write, &[at(1)], Bounded),
    command("BITCOUNT", Read, &[at(1)], Bounded),
    command("BITFIELD", Write, &[at(1)], Bounded),
    command("BITFIELD_RO", Read, &[at(1)], Bounded),
    command("BITOP", Write, &[at(2), span(3, -1, 1)], Bounded),
    command("BITPOS", Read, &[at(1)], Bounded),
    command("COPY", Write, &[at(1), at(2)], Bounded),
    command("DECR", Write, &[at(1)], Bounded),
    command("DECRBY", Write, &[at(1)], Bounded),
    command("DEL", Write, &[span(1, -1, 1)], Bounded),
    command("DUMP", Read, &[at(1)], Bounded),
    command("ECHO", Read, &[], Bounded),
    command("EXISTS", Read, &[span(1, -1, 1)], Bounded),
    command("EXPIRE", Write, &[at(1)], Bounded),
    command("EXPIREAT", Write, &[at(1)], Bounded),
    command("EXPIRETIME", Read, &[at(1)], Bounded),
    command("GEOADD", Write, &[at(1)], Bounded),
    command("GEODIST", Read, &[at(1)], Bounded),
    command("GEOHASH", Read, &[at(1)], Bounded),
    command("GEOPOS", Read, &[at(1)], Bounded),
    command("GEORADIUS_RO", Read, &[at(1)], limited("COUNT", 1, false)),
    command("GEORADIUSBYMEMBER_RO", Read, &[at(1)], limited("COUNT", 1, false)),
    command("GEOSEARCH", Read, &[at(1)], limited("COUNT", 1, false)),
    command("GEOSEARCHSTORE", Write, &[at(1), at(2)], Bounded),
    command("GET", Read, &[at(1)], Bounded),
    command("GETBIT", Read, &[at(1)], Bounded),
    command("GETDEL", Write, &[at(1)], Bounded),
    command("GETEX", Write, &[at(1)], Bounded),
    command("GETRANGE", Read, &[at(1)], Bounded),
    command("GETSET", Write, &[at(1)], Bounded),
    command("HDEL", Write, &[at(1)], Bounded),
    command("HEXISTS", Read, &[at(1)], Bounded),
    command("HGET", Read, &[at(1)], Bounded),
    command("HGETALL", Read, &[at(1)], Whole),
    command("HINCRBY", Write, &[at(1)], Bounded),
    command("HINCRBYFLOAT", Write, &[at(1)], Bounded),
    command("HKEYS", Read, &[at(1)], Whole),
    command("HLEN", Read, &[at(1)], Bounded),
    command("HMGET", Read, &[at(1)], Bounded),
    command("HMSET", Write, &[at(1)], Bounded),
    command("HRANDFIELD", Read, &[at(1)], CountAt(2)),
    command("HSCAN", Read, &[at(1)], Whole),
    command("HSET", Write, &[at(1)], Bounded),
    command("HSETNX", Write, &[at(1)], Bounded),
    command("HSTRLEN", Read, &[at(1)], Bounded),
    command("HVALS", Read, &[at(1)], Whole),
    command("INCR", Write, &[at(1)], Bounded),
    command("INCRBY", Write, &[at(1)], Bounded),
    command("INCRBYFLOAT", Write, &[at(1)], Bounded),
    command("LCS", Read, &[span(1, 1, 1)], Bounded),
    command("LINDEX", Read, &[at(1)], Bounded),
    command("LINSERT", Write, &[at(1)], Bounded),
    command("LLEN", Read, &[at(1)], Bounded),
    command("LMOVE", Write, &[at(1), at(2)], Bounded),
    command("LMPOP", Write, &[numkeys(1)], limited("COUNT", 1, true)),
    command("LPOP", Write, &[at(1)], CountAt(2)),
    command("LPOS", Read, &[at(1)], limited("COUNT", 1, true)),
    command("LPUSH", Write, &[at(1)], Bounded),
    command("LPUSHX", Write, &[at(1)], Bounded),
    command("LRANGE", Read, &[at(1)], IndexRange),
    command("LREM", Write, &[at(1)], Bounded),
    command("LSET", Write, &[at(1)], Bounded),
    command("LTRIM", Write, &[at(1)], Bounded),
    command("MGET", Read, &[span(1, -1, 1)], Bounded),
    command("MSET", Write, &[span(1, -1, 2)], Bounded),
    command("MSETNX", Write, &[span(1, -1, 2)], Bounded),
    command("OBJECT|FREQ", Read, &[at(2)], Bounded),
    command("OBJECT|IDLETIME", Read, &[at(2)], Bounded),
    command("OBJECT|ENCODING", Read, &[at(2)], Bounded),
    command("OBJECT|REFCOUNT", Read, &[at(2)], Bounded),
    command("PERSIST", Write, &[at(1)], Bounded),
    command("PEXPIRE", Write, &[at(1)], Bounded),
    command("PEXPIREAT", Write, &[at(1)], Bounded),
    command("PEXPIRETIME", Read, &[at(1)], Bounded),
    command("PFADD", Write, &[at(1)], Bounded),
    command("PFCOUNT", Write, &[span(1, -1, 1)], Bounded),
    command("PFMERGE", Write, &[at(1), span(2, -1, 1)], Bounded),
    command("PING", Read, &[], Bounded),
    command("PSETEX", Write, &[at(1)], Bounded),
    command("PTTL", Read, &[at(1)], Bounded),
    command("PUBLISH", Write, &[], Bounded),
    command("RENAME", Write, &[at(1), at(2)], Bounded),
    command("RENAMENX", Write, &[at(1), at(2)], Bounded),
    command("RPOP", Write, &[at(1)], CountAt(2)),
    command("RPOPLPUSH", Write, &[at(1), at(2)], Bounded),
    command("RPUSH", Write, &[at(1)], Bounded),
    command("RPUSHX", Write, &[at(1)], Bounded),
    command("SADD", Write, &[at(1)], Bounded),
    command("SCARD", Read, &[at(1)], Bounded),
    command("SDIFF", Read, &[span(1, -1, 1)], Whole),
    command("SDIFFSTORE", Write, &[at(1), span(2, -1, 1)], Bounded),
    command("SET", Write, &[at(1)], Bounded),
    command("SETBIT", Write, &[at(1)], Bounded),
    command("SETEX", Write, &[at(1)], Bounded),
    command("SETNX", Write, &[at(1)], Bounded),
    command("SETRANGE", Write, &[at(1)], Bounded),
    command("SINTER", Read, &[span(1, -1, 1)], Whole),
    command("SINTERCARD", Read, &[numkeys(1)], Bounded),
    command("SINTERSTORE", Write, &[at(1), span(2, -1, 1)], Bounded),
    command("SISMEMBER", Read, &[at(1)], Bounded),
    command("SMEMBERS", Read, &[at(1)], Whole),
    command("SMISMEMBER", Read, &[at(1)], Bounded),
    command("SMOVE", Write, &[at(1), at(2)], Bounded),
    command("SPOP", Write, &[at(1)], CountAt(2)),
    command("SPUBLISH", Write, &[at(1)], Bounded),
    command("SRANDMEMBER", Read, &[at(1)], CountAt(2)),
    command("SREM", Write, &[at(1)], Bounded),
    command("SSCAN", Read, &[at(1)], Whole),
    command("STRLEN", Read, &[at(1)], Bounded),
    command("SUBSTR", Read, &[at(1)], Bounded),
    command("SUNION", Read, &[span(1, -1, 1)], Whole),
    command("SUNIONSTORE", Write, &[at(1), span(2, -1, 1)], Bounded),
    command("TIME", Read, &[], Bounded),
    command("TOUCH", Read, &[span(1, -1, 1)], Bounded),
    command("TTL", Read, &[at(1)], Bounded),
    command("TYPE", Read, &[at(1)], Bounded),
    command("UNLINK", Write, &[span(1, -1, 1)], Bounded),
    command("XACK", Write, &[at(1)], Bounded),
    command("XADD", Write, &[at(1)], Bounded),
    command("XAUTOCLAIM", Write, &[at(1)], limited("COUNT", 1, true)),
    command("XCLAIM", Write, &[at(1)], Bounded),
    command("XDEL", Write, &[at(1)], Bounded),
    command("XGROUP|CREATE", Write, &[at(2)], Bounded),
    command("XGROUP|SETID", Write, &[at(2)], Bounded),
    command("XGROUP|DELCONSUMER", Write, &[at(2)], Bounded),
    command("XGROUP|CREATECONSUMER", Write, &[at(2)], Bounded),
    command("XGROUP|DESTROY", Write, &[at(2)], Bounded),
    command("XINFO|STREAM", Read, &[at(2)], Whole),
    command("XINFO|CONSUMERS", Read, &[at(2)], Whole),
    command("XINFO|GROUPS", Read, &[at(2)], Whole),
    command("XLEN", Read, &[at(1)], Bounded),
    command("XPENDING", Read, &[at(1)], PendingCount),
    command("XRANGE", Read, &[at(1)], limited("COUNT", 1, false)),
    command("XREAD", Read, &[keyword("STREAMS", 1)], limited("COUNT", 1, false)),
    command("XREADGROUP", Write, &[keyword("STREAMS", 4)], limited("COUNT", 1, false)),
    command("XREVRANGE", Read, &[at(1)], limited("COUNT", 1, false)),
    command("XSETID", Write, &[at(1)], Bounded),
    command("XTRIM", Write, &[at(1)], Bounded),
    command("ZADD", Write, &[at(1)], Bounded),
    command("ZCARD", Read, &[at(1)], Bounded),
    command("ZCOUNT", Read, &[at(1)], Bounded),
    command("ZDIFF", Read, &[numkeys(1)], Whole),
    command("ZDIFFSTORE", Write, &[at(1), numkeys(2)], Bounded),
    command("ZINCRBY", Write, &[at(1)], Bounded),
    command("ZINTER", Read, &[numkeys(1)], Whole),
    command("ZINTERCARD", Read, &[numkeys(1)], Bounded),
    command("ZINTERSTORE", Write, &[at(1), numkeys(2)], Bounded),
    command("ZLEXCOUNT", Read, &[at(1)], Bounded),
    command("ZMPOP", Write, &[numkeys(1)], limited("COUNT", 1, true)),
    command("ZMSCORE", Read, &[at(1)], Bounded),
    command("ZPOPMAX", Write, &[at(1)], CountAt(2)),
    command("ZPOPMIN", Write, &[at(1)], CountAt(2)),
    command("ZRANDMEMBER", Read, &[at(1)], CountAt(2)),
    command("ZRANGE", Read, &[at(1)], IndexRange),
    command("ZRANGEBYLEX", Read, &[at(1)], limited("LIMIT", 2, false)),
    command("ZRANGEBYSCORE", Read, &[at(1)], limited("LIMIT", 2, false)),
    command("ZRANGESTORE", Write, &[at(1), at(2)], Bounded),
    command("ZRANK", Read, &[at(1)], Bounded),
    command("ZREM", Write, &[at(1)], Bounded),
    command("ZREMRANGEBYLEX", Write, &[at(1)], Bounded),
    command("ZREMRANGEBYRANK", Write, &[at(1)], Bounded),
    command("ZREMRANGEBYSCORE", Write, &[at(1)], Bounded),
    command("ZREVRANGE", Read, &[at(1)], IndexRange),
    command("ZREVRANGEBYLEX", Read, &[at(1)], limited("LIMIT", 2, false)),
    command("ZREVRANGEBYSCORE", Read, &[at(1)], limited("LIMIT", 2, false)),
    command("ZREVRANK", Read, &[at(1)], Bounded),
    command("ZSCAN", Read, &[at(1)], Whole),
    command("ZSCORE", Read, &[at(1)], Bounded),
    command("ZUNION", Read, &[numkeys(1)], Whole),
    command("ZUNIONSTORE", Write, &[at(1), numkeys(2)], Bounded),
    container("OBJECT"),
    container("XGROUP"),
    container("XINFO"),
    forbidden("KEYS", KEY_NAMES),
    forbidden("SCAN", KEY_NAMES),
    forbidden("RANDOMKEY", KEY_NAMES),
    forbidden("SORT", "its BY and GET options read keys whose names are built from stored data"),
    forbidden("SORT_RO", "its BY and GET options read keys whose names are built from stored data"),
    forbidden("GEORADIUS", "its STORE options name keys outside the key positions: use GEOSEARCH or GEOSEARCHSTORE"),
    forbidden(
        "GEORADIUSBYMEMBER",
        "its STORE options name keys outside the key positions: use GEOSEARCH or GEOSEARCHSTORE",
    ),
    forbidden("FLUSHALL", WHOLE_DATABASE),
    forbidden("FLUSHDB", WHOLE_DATABASE),
    forbidden("SWAPDB", WHOLE_DATABASE),
    forbidden("DBSIZE", WHOLE_DATABASE),
    forbidden("SELECT", "it switches databases: a script works on the database its caller chose"),
    forbidden("MOVE", "it moves a key to another database: a script works on the database its caller chose"),
    forbidden("MIGRATE", "it sends keys to another server"),
    forbidden("RESTORE", "it creates a key from a serialized payload"),
    forbidden("EVAL", SCRIPTS),
    forbidden("EVALSHA", SCRIPTS),
    forbidden("EVAL_RO", SCRIPTS),
    forbidden("EVALSHA_RO", SCRIPTS),
    forbidden("FCALL", SCRIPTS),
    forbidden("FCALL_RO", SCRIPTS),
    forbidden("SCRIPT", SCRIPTS),
    forbidden("FUNCTION", SCRIPTS),
    forbidden("CONFIG", ADMIN),
    forbidden("DEBUG", ADMIN),
    forbidden("SHUTDOWN", ADMIN),
    forbidden("MONITOR", ADMIN),
    forbidden("SAVE", ADMIN),
    forbidden("BGSAVE", ADMIN),
    forbidden("BGREWRITEAOF", ADMIN),
    forbidden("LASTSAVE", ADMIN),
    forbidden("REPLICAOF", ADMIN),
    forbidden("SLAVEOF", ADMIN),
    forbidden("FAILOVER", ADMIN),
    forbidden("SYNC", ADMIN),
    forbidden("PSYNC", ADMIN),
    forbidden("ACL", ADMIN),
    forbidden("CLIENT", ADMIN),
    forbidden("CLUSTER", ADMIN),
    forbidden("MODULE", ADMIN),
    forbidden("INFO", ADMIN),
    forbidden("LATENCY", ADMIN),
    forbidden("SLOWLOG", ADMIN),
    forbidden("MEMORY", ADMIN),
    forbidden("COMMAND", ADMIN),
    forbidden("PFDEBUG", ADMIN),
    forbidden("PFSELFTEST", ADMIN),
    forbidden("MULTI", TRANSACTION),
    forbidden("EXEC", TRANSACTION),
    forbidden("DISCARD", TRANSACTION),
    forbidden("WATCH", TRANSACTION),
    forbidden("UNWATCH", TRANSACTION),
    forbidden("WAIT", TRANSACTION),
    forbidden("BLPOP", BLOCKING),
    forbidden("BRPOP", BLOCKING),
    forbidden("BLMOVE", BLOCKING),
    forbidden("BRPOPLPUSH", BLOCKING),
    forbidden("BLMPOP", BLOCKING),
    forbidden("BZPOPMIN", BLOCKING),
    forbidden("BZPOPMAX", BLOCKING),
    forbidden("BZMPOP", BLOCKING),
];
