//! [`HashMap`]: named fields in one Redis hash.

use std::marker::PhantomData;

use crate::call::hash_map;
use crate::client::Client;
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// Values in the fields of one Redis hash, encoded by the serializer `S`
/// (Python's `redisext.hashmap.HashMap`). Field names are bytes used as given —
/// never serialized, as in Python — and values are encoded.
///
/// | method | script |
/// |---|---|
/// | [`get`](Self::get) | `hash_map/get` (read-only) |
/// | [`set`](Self::set) | `hash_map/set` |
/// | [`remove`](Self::remove) | `hash_map/remove` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, HashMap, serializer::Numeric};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let stock = HashMap::<Numeric>::new(&client, "stock")?;
/// assert!(stock.set("apples", &12)?);   // a new field
/// assert!(!stock.set("apples", &10)?);  // replaced
/// assert_eq!(stock.get("apples")?, Some(10));
/// assert!(stock.remove("apples")?);
/// assert_eq!(stock.get("apples")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HashMap<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> HashMap<S, E> {
    /// The value of `field`, or `None` when the field (or the hash) does not exist.
    /// Bytes the serializer cannot read are [`Error::Decode`](crate::Error::Decode).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{HashMap, serializer::Str};
    /// # let user = HashMap::<Str>::new(&client, "user:1")?;
    /// user.set("name", "Ada")?;
    /// assert_eq!(user.get("name")?.as_deref(), Some("Ada"));
    /// assert_eq!(user.get("email")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, field: impl AsRef<[u8]>) -> E::Output<Option<S::Owned>> {
        let call =
            hash_map::Get { hash: self.core.key(), field: field.as_ref().to_vec().into() }.call(self.core.target());
        self.core.run(call, decode::optional::<S>)
    }

    /// Stores `value` in `field`; true when the field is new, false when a value
    /// was replaced (Python returns HSET's 1 or 0).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{HashMap, serializer::Str};
    /// # let user = HashMap::<Str>::new(&client, "user:1")?;
    /// assert!(user.set("name", "Ada")?); // a new field
    /// assert!(!user.set("name", "Grace")?); // replaced
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, field: impl AsRef<[u8]>, value: &S::Value) -> E::Output<bool> {
        let call = self.core.encode::<S>(value).and_then(|value| {
            self.core.once(|ops, op| {
                hash_map::Set { hash: self.core.key(), ops, field: field.as_ref().to_vec().into(), value, op }
                    .call(self.core.target())
            })
        });
        self.core.run(call, decode::flag)
    }

    /// Deletes `field`; true when there was one.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{HashMap, serializer::Str};
    /// # let user = HashMap::<Str>::new(&client, "user:1")?;
    /// user.set("name", "Ada")?;
    /// assert!(user.remove("name")?);
    /// assert!(!user.remove("name")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, field: impl AsRef<[u8]>) -> E::Output<bool> {
        let call = self.core.once(|ops, op| {
            hash_map::Remove { hash: self.core.key(), ops, field: field.as_ref().to_vec().into(), op }
                .call(self.core.target())
        });
        self.core.run(call, decode::flag)
    }
}

serialized_model!(HashMap, "hash", "hash map");
