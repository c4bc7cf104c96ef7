//! A blocking connection of this crate's own, over plain TCP or a Unix socket:
//! std's streams, the `redis` crate's RESP parser (so that replies are the same
//! `redis::Value`s as on the crate's connections), and the one thing the crate's
//! blocking connection cannot do — look at the socket before a write, to see
//! whether the server closed it while it sat idle (`CLIENT KILL`, an idle
//! `timeout`, a restart). Such a connection is replaced before anything is sent
//! on it, so the operation is not left "may have applied".
//!
//! TLS connections and connections from a `redis::Client` you configured stay on
//! the crate's `redis::Connection` (see `node`).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::request::write_command;
use crate::connection::{Address, Dsn, Timeouts};
use crate::wire::{CommandError, Delivery};

/// A connected, authenticated socket and the parser of its replies.
pub(super) struct OwnConnection {
    stream: Stream,
    /// Keeps what was read past a reply (the next replies of a pipeline).
    parser: redis::Parser,
}

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.read(buf),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.read(buf),
        }
    }
}

impl Stream {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.write_all(bytes),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.write_all(bytes),
        }
    }

    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => {
                stream.set_read_timeout(read)?;
                stream.set_write_timeout(write)
            }
            #[cfg(unix)]
            Stream::Unix(stream) => {
                stream.set_read_timeout(read)?;
                stream.set_write_timeout(write)
            }
        }
    }

    fn set_read_timeout(&self, read: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.set_read_timeout(read),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.set_read_timeout(read),
        }
    }

    /// Looks at the next byte without taking it or waiting for it: one
    /// `recv(MSG_PEEK | MSG_DONTWAIT)`, the socket left blocking (switching it to
    /// non-blocking and back would be two more system calls per check).
    #[cfg(unix)]
    fn peek_now(&self) -> io::Result<usize> {
        let mut byte = [std::mem::MaybeUninit::uninit()];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        match self {
            Stream::Tcp(stream) => socket2::SockRef::from(stream).recv_with_flags(&mut byte, flags),
            Stream::Unix(stream) => socket2::SockRef::from(stream).recv_with_flags(&mut byte, flags),
        }
    }

    /// Without `MSG_DONTWAIT`: the socket is made non-blocking for the peek.
    #[cfg(not(unix))]
    fn peek_now(&self) -> io::Result<usize> {
        let Stream::Tcp(stream) = self;
        stream.set_nonblocking(true)?;
        let peeked = stream.peek(&mut [0u8]);
        stream.set_nonblocking(false)?;
        peeked
    }
}

impl OwnConnection {
    /// Connects to `dsn` (plain TCP or a Unix socket) and sets the connection up
    /// as the `redis` crate would for the same settings, in one round trip:
    /// `AUTH` (user and password, or the password), `SELECT` when the database is
    /// not 0, `CLIENT SETINFO` (refusals ignored: servers before 7.2 have none),
    /// and `READONLY` when `readonly`. RESP2. Every failure here is
    /// [`Delivery::NotSent`]: no command of the caller's went out.
    ///
    /// `timeouts.connect` bounds each address the host resolves to and then the
    /// handshake; `timeouts.response` is the reads' and writes' timeout after.
    pub(super) fn open(dsn: &Dsn, timeouts: Timeouts, readonly: bool) -> Result<OwnConnection, CommandError> {
        let started = Instant::now();
        let stream = connect(dsn.address(), timeouts.connect).map_err(|e| not_sent(e.into()))?;
        // The handshake gets what is left of the connect timeout (at least 1 ms:
        // zero means "no timeout" to std).
        let left = timeouts.connect.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        stream.set_timeouts(Some(left), Some(left)).map_err(|e| not_sent(e.into()))?;
        let mut connection = OwnConnection { stream, parser: redis::Parser::new() };
        let username = dsn.username().map(str::as_bytes);
        if connection.handshake(dsn, username, readonly)? == Auth::RetryWithoutUser {
            // A server without ACLs (before Redis 6) takes the password alone.
            connection.handshake(dsn, None, readonly)?;
        }
        connection.stream.set_timeouts(timeouts.response, timeouts.response).map_err(|e| not_sent(e.into()))?;
        Ok(connection)
    }

    fn handshake(&mut self, dsn: &Dsn, username: Option<&[u8]>, readonly: bool) -> Result<Auth, CommandError> {
        let db = dsn.db().to_string();
        let version = env!("CARGO_PKG_VERSION");
        let mut commands: Vec<(Step, Vec<&[u8]>)> = Vec::with_capacity(5);
        if let Some(password) = dsn.password() {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(username);
            auth.push(password.expose().as_bytes());
            commands.push((Step::Auth, auth));
        }
        if dsn.db() != 0 {
            commands.push((Step::Select, vec![b"SELECT", db.as_bytes()]));
        }
        commands.push((Step::Ignored, vec![b"CLIENT", b"SETINFO", b"LIB-NAME", b"redisext"]));
        commands.push((Step::Ignored, vec![b"CLIENT", b"SETINFO", b"LIB-VER", version.as_bytes()]));
        if readonly {
            commands.push((Step::ReadOnly, vec![b"READONLY"]));
        }
        let mut packed = Vec::with_capacity(256);
        for (_, args) in &commands {
            write_command(&mut packed, args);
        }
        self.stream.write_all(&packed).map_err(|e| not_sent(e.into()))?;
        // Every reply is read, even after a refusal, so that a retried handshake
        // starts in step.
        let mut refused = None;
        for (step, _) in &commands {
            let reply = self.parser.parse_value(&mut self.stream).map_err(not_sent)?;
            let redis::Value::ServerError(error) = reply else { continue };
            let message = format!("{} {}", error.code(), error.details().unwrap_or_default());
            if refused.is_none() {
                refused = match step {
                    Step::Auth if username.is_some() && message.contains("wrong number of arguments for 'auth'") => {
                        Some(Ok(Auth::RetryWithoutUser))
                    }
                    Step::Auth => Some(Err(format!("authentication failed: {message}"))),
                    Step::Select => Some(Err(format!("the server refused SELECT {db}: {message}"))),
                    Step::ReadOnly => Some(Err(format!("the server refused READONLY: {message}"))),
                    Step::Ignored => None,
                };
            }
        }
        match refused {
            None => Ok(Auth::Done),
            Some(Ok(retry)) => Ok(retry),
            Some(Err(why)) => Err(CommandError::Connection { delivery: Delivery::NotSent, source: why.into() }),
        }
    }

    /// Writes a packed command (or several).
    pub(super) fn send(&mut self, bytes: &[u8]) -> redis::RedisResult<()> {
        Ok(self.stream.write_all(bytes)?)
    }

    /// Reads one reply; an error reply is `Ok(Value::ServerError)`.
    pub(super) fn recv(&mut self) -> redis::RedisResult<redis::Value> {
        self.parser.parse_value(&mut self.stream)
    }

    pub(super) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// True when an idle connection can no longer take a command: the server
    /// closed it (the end of the stream, or a reset), or it holds bytes no
    /// command asked for (out of step). Nothing is read or sent, and it does not
    /// wait: a closed connection shows at once, as the kernel has the server's
    /// FIN or RST.
    pub(super) fn closed_while_idle(&self) -> bool {
        !matches!(self.stream.peek_now(), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }
}

#[derive(Clone, Copy)]
enum Step {
    Auth,
    Select,
    ReadOnly,
    /// `CLIENT SETINFO`: a refusal is ignored, as the `redis` crate does.
    Ignored,
}

#[derive(PartialEq, Eq)]
enum Auth {
    Done,
    RetryWithoutUser,
}

fn not_sent(error: redis::RedisError) -> CommandError {
    CommandError::Connection { delivery: Delivery::NotSent, source: error.into() }
}

/// A connected stream with `TCP_NODELAY` (a command is one write: waiting to
/// coalesce it would only add latency). Each address a host resolves to gets
/// `timeout`.
fn connect(address: &Address, timeout: Duration) -> io::Result<Stream> {
    match address {
        Address::Tcp { host, port } => {
            let mut last = None;
            for resolved in (host.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&resolved, timeout) {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(Stream::Tcp(stream));
                    }
                    Err(error) => last = Some(error),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))))
        }
        #[cfg(unix)]
        Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
        other => Err(io::Error::new(io::ErrorKind::Unsupported, format!("{other:?} is not for this connection"))),
    }
}

/// Whether a DSN's connections can be this crate's own: plain TCP and Unix
/// sockets (TLS goes through the `redis` crate).
pub(super) fn can_own(dsn: &Dsn) -> bool {
    match dsn.address() {
        Address::Tcp { .. } => true,
        #[cfg(unix)]
        Address::Unix(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    fn open(server: &RedisServer) -> OwnConnection {
        OwnConnection::open(&Dsn::parse(&server.url()).unwrap(), Timeouts::default(), false).unwrap()
    }

    fn ping(connection: &mut OwnConnection) -> redis::Value {
        connection.send(b"*1\r\n$4\r\nPING\r\n").unwrap();
        connection.recv().unwrap()
    }

    #[test]
    fn an_idle_connection_is_open_until_the_server_closes_it() {
        let server = RedisServer::start().unwrap();
        let mut connection = open(&server);
        assert!(!connection.closed_while_idle(), "just opened");
        assert_eq!(ping(&mut connection), redis::Value::SimpleString("PONG".into()));
        assert!(!connection.closed_while_idle(), "idle, every reply read");
        server.command(&["CLIENT", "KILL", "TYPE", "normal"]).unwrap();
        server
            .wait_until(Duration::from_secs(5), |_| Ok(connection.closed_while_idle()))
            .expect("the close is seen without a read or a write");
    }

    #[test]
    fn a_connection_with_a_reply_nobody_asked_for_is_out_of_step() {
        let server = RedisServer::start().unwrap();
        let mut connection = open(&server);
        // A reply left unread, as after a caller gave up on it.
        connection.send(b"*1\r\n$4\r\nPING\r\n").unwrap();
        server
            .wait_until(Duration::from_secs(5), |_| Ok(connection.closed_while_idle()))
            .expect("the unread reply makes it unusable");
    }

    #[test]
    fn the_handshake_selects_the_database_and_reports_a_refusal_as_not_sent() {
        let server = RedisServer::start().unwrap();
        let url = format!("redis://127.0.0.1:{}/5", server.port());
        let mut connection = OwnConnection::open(&Dsn::parse(&url).unwrap(), Timeouts::default(), false).unwrap();
        connection.send(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n").unwrap();
        let redis::Value::BulkString(info) = connection.recv().unwrap() else { panic!("CLIENT INFO") };
        assert!(String::from_utf8(info).unwrap().contains(" db=5 "), "on database 5");

        let refused = |url: String, readonly: bool, what: &str| {
            let Err(CommandError::Connection { delivery, source }) =
                OwnConnection::open(&Dsn::parse(&url).unwrap(), Timeouts::default(), readonly)
            else {
                panic!("{what} was not refused")
            };
            assert_eq!(delivery, Delivery::NotSent, "{what}");
            assert!(source.to_string().contains(what), "{what}: {source}");
        };
        refused(format!("redis://127.0.0.1:{}/16", server.port()), false, "SELECT 16");
        // Redis outside a cluster refuses READONLY (Valkey 9 accepts it): the
        // handshake fails exactly when the server refuses.
        let url = format!("redis://127.0.0.1:{}/0", server.port());
        if server.command(&["READONLY"]).is_err() {
            refused(url, true, "READONLY");
        } else {
            OwnConnection::open(&Dsn::parse(&url).unwrap(), Timeouts::default(), true)
                .expect("READONLY accepted by the server, and by the handshake");
        }
    }
}
