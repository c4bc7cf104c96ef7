//! [`Stack`]: last in, first out.

use std::marker::PhantomData;

use crate::call::stack;
use crate::client::Client;
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// A last-in, first-out stack of items encoded by the serializer `S` (Python's
/// `redisext.stack.Stack`): a Redis list whose head is the top (`LPUSH`, `LPOP`).
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) | `stack/push` |
/// | [`pop`](Self::pop) | `stack/pop` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Stack, serializer::Numeric};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let undo = Stack::<Numeric>::new(&client, "undo")?;
/// undo.push(&1)?;
/// assert_eq!(undo.push(&2)?, 2);
/// assert_eq!(undo.pop()?, Some(2));
/// assert_eq!(undo.pop()?, Some(1));
/// assert_eq!(undo.pop()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Stack<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> Stack<S, E> {
    /// Puts `item` on top; returns the stack's new height.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Stack, serializer::Str};
    /// # let undo = Stack::<Str>::new(&client, "undo")?;
    /// assert_eq!(undo.push("type")?, 1); // the new length
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, item: &S::Value) -> E::Output<u64> {
        let call = self.core.encode::<S>(item).and_then(|item| {
            self.core.once(|ops, op| stack::Push { stack: self.core.key(), ops, item, op }.call(self.core.target()))
        });
        self.core.run(call, decode::count)
    }

    /// Removes and returns the top item; `None` when the stack is empty. Each item
    /// is handed to exactly one caller.
    ///
    /// An item the serializer cannot decode is still removed (the pop is one
    /// atomic step): the error, [`Error::PoppedUndecodable`](crate::Error::PoppedUndecodable),
    /// carries its bytes so it is not lost.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Stack, serializer::Str};
    /// # let undo = Stack::<Str>::new(&client, "undo")?;
    /// undo.push("type")?;
    /// undo.push("delete")?;
    /// assert_eq!(undo.pop()?.as_deref(), Some("delete")); // last in, first out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> E::Output<Option<S::Owned>> {
        let call = self.core.once(|ops, op| stack::Pop { stack: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::popped::<S>)
    }
}

serialized_model!(Stack, "list", "stack");
