//! [`SortedSet`]: members ordered by a floating-point score.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use crate::call::{Arg, ScriptCall, sorted_set};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode, decode_bytes, unexpected};
use crate::script::Script;
use crate::serializer::{Raw, Serializer};
use crate::wire::Reply;

/// Distinct members ordered by a score, encoded by the serializer `S` (Python's
/// `redisext.pool.SortedSet`, a Redis sorted set).
///
/// Scores are `f64`, infinities included (NaN is refused before any round trip).
/// Score ranges are Rust ranges: `..` for every score, `1.0..=5.0` for both ends
/// included (Python's `length(1, 5)`), `1.0..5.0` to leave 5 out, `..=0.0`, and
/// `(Bound::Excluded(a), Bound::Included(b))` for the rest; infinite ends such as
/// `f64::NEG_INFINITY..=f64::INFINITY` work too. Members are compared by their
/// encoded bytes, so a JSON, string or numeric member added by Python is found
/// (and removed) by Rust and the reverse; a pickled one is not (see
/// [`Pickle`](crate::serializer::Pickle)).
///
/// | method | script |
/// |---|---|
/// | [`add`](Self::add) | `sorted_set/add` |
/// | [`rem`](Self::rem) | `sorted_set/rem` |
/// | [`length`](Self::length) | `sorted_set/length` (read-only) |
/// | [`members`](Self::members), [`members_with_scores`](Self::members_with_scores) | `sorted_set/members` (read-only) |
/// | [`members_by_score`](Self::members_by_score), [`members_by_score_with_scores`](Self::members_by_score_with_scores) | `sorted_set/members_by_score` (read-only) |
/// | [`contains`](Self::contains) | `sorted_set/contains` (read-only) |
/// | [`truncate`](Self::truncate) | `sorted_set/truncate` |
/// | [`clean`](Self::clean) | `sorted_set/clean` |
/// | [`clean_by_score`](Self::clean_by_score) | `sorted_set/clean_by_score` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Scored, SortedSet, serializer::Str};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let board = SortedSet::<Str>::new(&client, "leaderboard")?;
/// board.add("ada", 31.5)?;
/// board.add("bob", 12.0)?;
/// board.add("cy", 20.0)?;
/// assert_eq!(board.members()?, ["ada", "cy", "bob"]); // highest first
/// assert_eq!(board.members_by_score(..=20.0)?, ["bob", "cy"]); // lowest first
/// assert_eq!(board.length(15.0..)?, 2);
/// assert_eq!(board.members_with_scores()?[0], Scored { member: "ada".to_owned(), score: 31.5 });
/// assert_eq!(board.truncate(2)?, 1); // keeps the 2 highest
/// assert!(!board.contains("bob")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SortedSet<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

/// A member and its score, as [`SortedSet::members_with_scores`] and
/// [`SortedSet::members_by_score_with_scores`] return them. (Python returns
/// `(score, member)` tuples; named fields leave no doubt which is which.)
#[derive(Clone, Debug, PartialEq)]
pub struct Scored<T> {
    /// The member, decoded.
    pub member: T,
    /// Its score.
    pub score: f64,
}

impl<S: Serializer, E: Executor> SortedSet<S, E> {
    /// Adds `member` with `score`, or changes the score of a member already
    /// there; true when the member is new.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// assert!(board.add("ann", 10.0)?); // new
    /// assert!(!board.add("ann", 12.5)?); // score updated
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&self, member: &S::Value, score: f64) -> E::Output<bool> {
        let call = score_arg(score, sorted_set::Add::SCRIPT).and_then(|score| {
            let member = self.core.encode::<S>(member)?;
            self.core.once(|ops, op| {
                sorted_set::Add { set: self.core.key(), ops, score: score.into_bytes().into(), member, op }
                    .call(self.core.target())
            })
        });
        self.core.run(call, decode::flag)
    }

    /// Removes `member`; true when it was there.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// board.add("ann", 1.0)?;
    /// assert!(board.rem("ann")?);
    /// assert!(!board.rem("ann")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rem(&self, member: &S::Value) -> E::Output<bool> {
        let call = self.core.encode::<S>(member).and_then(|member| {
            self.core.once(|ops, op| sorted_set::Rem { set: self.core.key(), ops, member, op }.call(self.core.target()))
        });
        self.core.run(call, decode::flag)
    }

    /// The number of members whose score is in `scores` (`..` counts them all).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// // board: ann 1, bob 2, cat 3
    /// assert_eq!(board.length(..)?, 3);
    /// assert_eq!(board.length(2.0..)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn length(&self, scores: impl RangeBounds<f64>) -> E::Output<u64> {
        let call = range(&scores, sorted_set::Length::SCRIPT)
            .and_then(|(min, max)| sorted_set::Length { set: self.core.key(), min, max }.call(self.core.target()));
        self.core.run(call, decode::count)
    }

    /// Every member, highest score first (members with equal scores in reverse
    /// byte order), as Python's `members()`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert_eq!(board.members()?, ["cat", "bob", "ann"]); // highest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members(&self) -> E::Output<Vec<S::Owned>> {
        let call = sorted_set::Members { set: self.core.key(), with_scores: false.into() }.call(self.core.target());
        self.core.run(call, decode::list::<S>)
    }

    /// Every member with its score, highest score first (Python's
    /// `members(with_scores=True)`).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// let top = &board.members_with_scores()?[0];
    /// assert_eq!((top.member.as_str(), top.score), ("cat", 3.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members_with_scores(&self) -> E::Output<Vec<Scored<S::Owned>>> {
        let call = sorted_set::Members { set: self.core.key(), with_scores: true.into() }.call(self.core.target());
        self.core.run(call, decode_scored::<S>)
    }

    /// The members whose score is in `scores`, lowest score first (Python's
    /// `members_by_score(min, max)`; `..` for all of them).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert_eq!(board.members_by_score(1.5..=3.0)?, ["bob", "cat"]); // lowest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members_by_score(&self, scores: impl RangeBounds<f64>) -> E::Output<Vec<S::Owned>> {
        self.core.run(self.by_score(&scores, false), decode::list::<S>)
    }

    /// The members whose score is in `scores`, with their scores, lowest first.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// let low = board.members_by_score_with_scores(..2.0)?;
    /// assert_eq!(low.len(), 1);
    /// assert_eq!((low[0].member.as_str(), low[0].score), ("ann", 1.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members_by_score_with_scores(&self, scores: impl RangeBounds<f64>) -> E::Output<Vec<Scored<S::Owned>>> {
        self.core.run(self.by_score(&scores, true), decode_scored::<S>)
    }

    /// True when `member` is in the set.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert!(board.contains("bob")?);
    /// assert!(!board.contains("dan")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, member: &S::Value) -> E::Output<bool> {
        let call = self
            .core
            .encode::<S>(member)
            .and_then(|member| sorted_set::Contains { set: self.core.key(), member }.call(self.core.target()));
        self.core.run(call, decode::flag)
    }

    /// Keeps the `keep` members with the highest scores and removes the others;
    /// returns how many were removed (`truncate(0)` empties the set).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert_eq!(board.truncate(2)?, 1); // removed ann, the lowest
    /// assert_eq!(board.members()?, ["cat", "bob"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(&self, keep: u64) -> E::Output<u64> {
        let call = self.core.once(|ops, op| {
            sorted_set::Truncate { set: self.core.key(), ops, keep: keep.into(), op }.call(self.core.target())
        });
        self.core.run(call, decode::count)
    }

    /// Deletes the whole set; true when it existed. A key holding another Redis
    /// type is left alone: [`Error::WrongType`].
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert!(board.clean()?);
    /// assert_eq!(board.length(..)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clean(&self) -> E::Output<bool> {
        let call =
            self.core.once(|ops, op| sorted_set::Clean { set: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::flag)
    }

    /// Removes the members whose score is in `scores`; returns how many were
    /// removed (Python returns whether any were).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{SortedSet, serializer::Str};
    /// # let board = SortedSet::<Str>::new(&client, "board")?;
    /// # board.add("ann", 1.0)?;
    /// # board.add("bob", 2.0)?;
    /// # board.add("cat", 3.0)?;
    /// assert_eq!(board.clean_by_score(..2.5)?, 2);
    /// assert_eq!(board.members()?, ["cat"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clean_by_score(&self, scores: impl RangeBounds<f64>) -> E::Output<u64> {
        let call = range(&scores, sorted_set::CleanByScore::SCRIPT).and_then(|(min, max)| {
            self.core.once(|ops, op| {
                sorted_set::CleanByScore { set: self.core.key(), ops, min, max, op }.call(self.core.target())
            })
        });
        self.core.run(call, decode::count)
    }

    fn by_score(&self, scores: &impl RangeBounds<f64>, with_scores: bool) -> Result<ScriptCall> {
        let (min, max) = range(scores, sorted_set::MembersByScore::SCRIPT)?;
        sorted_set::MembersByScore { set: self.core.key(), min, max, with_scores: with_scores.into() }
            .call(self.core.target())
    }
}

/// A score range as the `min` and `max` arguments of `script`.
fn range(scores: &impl RangeBounds<f64>, script: Script) -> Result<(Arg, Arg)> {
    let min = bound_arg(scores.start_bound(), "-inf", script)?;
    let max = bound_arg(scores.end_bound(), "+inf", script)?;
    Ok((min.into_bytes().into(), max.into_bytes().into()))
}

/// A score as Redis reads it: shortest round-trip digits (`1.5e0`), `+inf`,
/// `-inf`. NaN has no place in a sorted set and is refused.
fn score_arg(score: f64, script: Script) -> Result<String> {
    if score.is_nan() {
        return Err(Error::InvalidArgument { op: script.name(), reason: "a score cannot be NaN".into() });
    }
    Ok(match score {
        f64::INFINITY => "+inf".to_owned(),
        f64::NEG_INFINITY => "-inf".to_owned(),
        _ => format!("{score:e}"),
    })
}

/// One end of a score range in Redis's syntax (`(` marks an open end).
fn bound_arg(bound: Bound<&f64>, unbounded: &str, script: Script) -> Result<String> {
    match bound {
        Bound::Unbounded => Ok(unbounded.to_owned()),
        Bound::Included(score) => score_arg(*score, script),
        Bound::Excluded(score) => Ok(format!("({}", score_arg(*score, script)?)),
    }
}

/// Member, score pairs flattened in one array, scores as text.
fn decode_scored<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Vec<Scored<S::Owned>>> {
    let Reply::Array(items) = reply else { return Err(unexpected(&reply, call)) };
    if items.len() % 2 != 0 {
        return Err(unexpected(&Reply::Array(items), call));
    }
    let mut scored = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(member), Some(score)) = (items.next(), items.next()) {
        let member = match member {
            Reply::Bulk(bytes) => decode_bytes::<S>(&bytes, call)?,
            other => return Err(unexpected(&other, call)),
        };
        let score = match &score {
            Reply::Bulk(text) => std::str::from_utf8(text).ok().and_then(|text| text.parse::<f64>().ok()),
            _ => None,
        }
        .ok_or_else(|| unexpected(&score, call))?;
        scored.push(Scored { member, score });
    }
    Ok(scored)
}

serialized_model!(SortedSet, "zset", "sorted set");
