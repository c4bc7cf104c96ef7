//! [`PriorityQueue`]: lowest priority out first, atomically.

use std::marker::PhantomData;

use crate::call::priority_queue;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// The largest priority magnitude stored exactly: scores are doubles, which hold
/// every integer up to 2^53 and no longer all of them beyond.
pub const MAX_PRIORITY: i64 = 1 << 53;

/// Items with integer priorities, handed out lowest priority first (Python's
/// `redisext.queue.PriorityQueue`: a sorted set whose scores are the priorities).
///
/// Python redisext pops in two commands (read the first item, then remove it), so
/// two consumers can receive the same item. Here [`pop`](Self::pop) is one
/// script: every item is delivered to exactly one consumer.
///
/// The queue is a set: pushing an item that is already queued changes its
/// priority instead of queueing it twice. Among equal priorities the item whose
/// encoded bytes sort first comes out first (Redis's order, and Python's).
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) | `priority_queue/push` |
/// | [`pop`](Self::pop) | `priority_queue/pop` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, PriorityQueue, serializer::Str};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let tasks = PriorityQueue::<Str>::new(&client, "tasks")?;
/// tasks.push("later", 10)?;
/// tasks.push("urgent", 1)?;
/// assert_eq!(tasks.pop()?.as_deref(), Some("urgent"));
/// assert_eq!(tasks.pop()?.as_deref(), Some("later"));
/// assert_eq!(tasks.pop()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PriorityQueue<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> PriorityQueue<S, E> {
    /// Queues `item` with `priority` (lower comes out first); true when the item
    /// is new, false when it was already queued and only its priority changed.
    /// A priority beyond ±[`MAX_PRIORITY`] is [`Error::InvalidArgument`]: as a
    /// Redis score it would be rounded, and the order would no longer be exact.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{PriorityQueue, serializer::Str};
    /// # let tasks = PriorityQueue::<Str>::new(&client, "tasks")?;
    /// assert!(tasks.push("backup", 5)?); // a new item
    /// assert!(!tasks.push("backup", 1)?); // its priority changed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, item: &S::Value, priority: i64) -> E::Output<bool> {
        let call = checked_priority(priority).and_then(|priority| {
            let item = self.core.encode::<S>(item)?;
            self.core.once(|ops, op| {
                priority_queue::Push { queue: self.core.key(), ops, priority: priority.into(), item, op }
                    .call(self.core.target())
            })
        });
        self.core.run(call, decode::flag)
    }

    /// Removes and returns the item with the lowest priority; `None` when the
    /// queue is empty. Reading and removing are one atomic step, so no two callers
    /// ever receive the same item.
    ///
    /// An item the serializer cannot decode is still removed: the error,
    /// [`Error::PoppedUndecodable`], carries its
    /// bytes so it is not lost.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{PriorityQueue, serializer::Str};
    /// # let tasks = PriorityQueue::<Str>::new(&client, "tasks")?;
    /// tasks.push("later", 9)?;
    /// tasks.push("now", 1)?;
    /// assert_eq!(tasks.pop()?.as_deref(), Some("now")); // lowest priority first
    /// assert_eq!(tasks.pop()?.as_deref(), Some("later"));
    /// assert_eq!(tasks.pop()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> E::Output<Option<S::Owned>> {
        let call =
            self.core.once(|ops, op| priority_queue::Pop { queue: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::popped::<S>)
    }
}

fn checked_priority(priority: i64) -> Result<i64> {
    if priority.unsigned_abs() > MAX_PRIORITY.unsigned_abs() {
        return Err(Error::InvalidArgument {
            op: priority_queue::Push::SCRIPT.name(),
            reason: format!("priority {priority} is beyond ±2^53, where Redis scores (doubles) are no longer exact"),
        });
    }
    Ok(priority)
}

serialized_model!(PriorityQueue, "zset", "priority queue");
