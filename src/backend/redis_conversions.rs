//! Between this crate's types and the `redis` crate's: a [`Dsn`] into a
//! `redis::Client`, the crate's replies and errors into [`Reply`] and
//! [`CommandError`]. Shared by the blocking and async backends.

use crate::connection::{Address, Dsn};
use crate::error::{Error, Result};
use crate::wire::{CommandError, Reply, ServerError};

/// The `redis` crate's client for a DSN (nothing is connected): its address, TLS,
/// database, user and password, with this crate's name as the client library
/// (`CLIENT SETINFO`).
///
/// ```
/// let dsn: redisext::Dsn = "redis://app:s3cret@10.0.0.5:6380/2".parse()?;
/// let client = redisext::backend::redis_client(&dsn)?;
/// assert_eq!(client.get_connection_info().redis_settings().db(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn redis_client(dsn: &Dsn) -> Result<redis::Client> {
    use redis::IntoConnectionInfo;

    let address = match dsn.address() {
        Address::Tcp { host, port } => redis::ConnectionAddr::Tcp(host.clone(), *port),
        #[cfg(feature = "tls")]
        Address::Tls { host, port } => {
            // rustls needs a process-wide crypto provider; another crate may have
            // installed one already, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            redis::ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        }
        Address::Unix(path) => redis::ConnectionAddr::Unix(path.clone()),
        #[allow(unreachable_patterns)]
        other => return Err(Error::Config(format!("address {other:?} needs the `tls` feature"))),
    };
    let mut settings =
        redis::RedisConnectionInfo::default().set_db(dsn.db()).set_lib_name("redisext", env!("CARGO_PKG_VERSION"));
    if let Some(user) = dsn.username() {
        settings = settings.set_username(user);
    }
    if let Some(password) = dsn.password() {
        settings = settings.set_password(password.expose());
    }
    let info =
        address.into_connection_info().map_err(|e| Error::Config(format!("{dsn}: {e}")))?.set_redis_settings(settings);
    redis::Client::open(info).map_err(|e| Error::Config(format!("{dsn}: {e}")))
}

/// An error reply the `redis` crate returned as an `Err`.
pub(crate) fn server_error_of(error: &redis::RedisError) -> CommandError {
    CommandError::Server(ServerError {
        code: error.code().unwrap_or("ERR").to_owned(),
        message: error.detail().unwrap_or_default().to_owned(),
    })
}

/// Converts a top-level reply; an error reply becomes `Err`.
pub(crate) fn reply_from(value: redis::Value) -> Result<Reply, CommandError> {
    match value {
        redis::Value::ServerError(error) => Err(CommandError::Server(server_error(&error))),
        other => Ok(convert(other)),
    }
}

fn server_error(error: &redis::ServerError) -> ServerError {
    ServerError { code: error.code().to_owned(), message: error.details().unwrap_or_default().to_owned() }
}

/// The `redis` crate's values as [`Reply`]s (for a backend of your own on the
/// redis crate). RESP3-only types (never sent on the RESP2 connections the default
/// backends open) are mapped to their RESP2 shapes; a top-level error reply
/// becomes [`Reply::Error`].
impl From<redis::Value> for Reply {
    fn from(value: redis::Value) -> Reply {
        convert(value)
    }
}

fn convert(value: redis::Value) -> Reply {
    use redis::Value;
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(bytes) => Reply::Bulk(bytes),
        Value::Array(items) | Value::Set(items) => Reply::Array(items.into_iter().map(convert).collect()),
        Value::SimpleString(status) => Reply::Status(status),
        Value::Okay => Reply::Status("OK".to_owned()),
        Value::Map(pairs) => Reply::Array(pairs.into_iter().flat_map(|(k, v)| [convert(k), convert(v)]).collect()),
        Value::Attribute { data, .. } => convert(*data),
        Value::Double(number) => Reply::Bulk(number.to_string().into_bytes()),
        Value::Boolean(flag) => Reply::Int(i64::from(flag)),
        Value::VerbatimString { text, .. } => Reply::Bulk(text.into_bytes()),
        Value::BigNumber(number) => Reply::Bulk(format!("{number:?}").into_bytes()),
        Value::Push { data, .. } => Reply::Array(data.into_iter().map(convert).collect()),
        Value::ServerError(error) => Reply::Error(server_error(&error)),
        // `redis::Value` is non-exhaustive.
        #[allow(unreachable_patterns)]
        other => Reply::Bulk(format!("{other:?}").into_bytes()),
    }
}
