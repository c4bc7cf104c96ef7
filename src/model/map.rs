//! [`Map`]: one value at a string key.

use std::marker::PhantomData;

use crate::call::map;
use crate::client::Client;
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// One value at a string key, encoded by the serializer `S` (Python's
/// `redisext.hashmap.Map`).
///
/// | method | script |
/// |---|---|
/// | [`get`](Self::get) | `map/get` (read-only) |
/// | [`set`](Self::set) | `map/set` |
/// | [`incr`](Self::incr) / [`decr`](Self::decr) | `map/incr` / `map/decr` |
/// | [`remove`](Self::remove) | `map/remove` |
/// | [`exists`](Self::exists) | `map/exists` (read-only) |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Map, serializer::Json};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Settings { theme: String, font_size: u32 }
///
/// let client = Client::open(&url)?;
/// let settings = Map::<Json<Settings>>::new(&client, "settings:42")?;
/// settings.set(&Settings { theme: "dark".into(), font_size: 14 })?;
/// assert_eq!(settings.get()?, Some(Settings { theme: "dark".into(), font_size: 14 }));
/// assert!(settings.remove()?);
/// assert_eq!(settings.get()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Map<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> Map<S, E> {
    /// The stored value, or `None` when the key does not exist. Bytes the
    /// serializer cannot read are [`Error::Decode`](crate::Error::Decode).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Map, serializer::Str};
    /// # let name = Map::<Str>::new(&client, "name")?;
    /// assert_eq!(name.get()?, None);
    /// name.set("Ada")?;
    /// assert_eq!(name.get()?.as_deref(), Some("Ada"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> E::Output<Option<S::Owned>> {
        self.core.run(map::Get { map: self.core.key() }.call(self.core.target()), decode::optional::<S>)
    }

    /// Stores `value`, replacing the previous value and its expiry.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Map, serializer::Str};
    /// # let name = Map::<Str>::new(&client, "name")?;
    /// name.set("Ada")?;
    /// name.set("Grace")?; // replaces
    /// assert_eq!(name.get()?.as_deref(), Some("Grace"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, value: &S::Value) -> E::Output<()> {
        let call = self.core.encode::<S>(value).and_then(|value| {
            self.core.once(|ops, op| map::Set { map: self.core.key(), ops, value, op }.call(self.core.target()))
        });
        self.core.run(call, decode::ok)
    }

    /// Adds `amount` to an integer value (a missing value counts as 0) and returns
    /// the new value.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::Map;
    /// # let n = Map::<redisext::serializer::Numeric>::new(&client, "n")?;
    /// assert_eq!(n.incr(5)?, 5);
    /// assert_eq!(n.get()?, Some(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incr(&self, amount: i64) -> E::Output<i64> {
        let call = self.core.once(|ops, op| {
            map::Incr { map: self.core.key(), ops, amount: amount.into(), op }.call(self.core.target())
        });
        self.core.run(call, decode::int)
    }

    /// Subtracts `amount` from an integer value (a missing value counts as 0) and
    /// returns the new value.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::Map;
    /// # let n = Map::<redisext::serializer::Numeric>::new(&client, "n")?;
    /// n.set(&10)?;
    /// assert_eq!(n.decr(3)?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decr(&self, amount: i64) -> E::Output<i64> {
        let call = self.core.once(|ops, op| {
            map::Decr { map: self.core.key(), ops, amount: amount.into(), op }.call(self.core.target())
        });
        self.core.run(call, decode::int)
    }

    /// Deletes the value; true when there was one.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Map, serializer::Str};
    /// # let name = Map::<Str>::new(&client, "name")?;
    /// name.set("Ada")?;
    /// assert!(name.remove()?);
    /// assert!(!name.remove()?); // already gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self) -> E::Output<bool> {
        let call = self.core.once(|ops, op| map::Remove { map: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::flag)
    }

    /// True when a value is stored.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Map, serializer::Str};
    /// # let name = Map::<Str>::new(&client, "name")?;
    /// assert!(!name.exists()?);
    /// name.set("Ada")?;
    /// assert!(name.exists()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exists(&self) -> E::Output<bool> {
        self.core.run(map::Exists { map: self.core.key() }.call(self.core.target()), decode::flag)
    }
}

serialized_model!(Map, "string", "map");
