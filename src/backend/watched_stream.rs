//! The async client's plain TCP and Unix-socket streams, opened by this crate
//! and handed to the `redis` crate's multiplexed connection, with a flag that
//! says when the stream has ended. The connection's driver task reads all the
//! time, so the server closing the connection (`CLIENT KILL`, an idle `timeout`,
//! a restart) sets the flag as soon as the driver sees it; the flag is checked
//! before a shared connection takes a request, so that a request never goes
//! into a connection already known to be dead. (Into such a connection the
//! `redis` crate fails a request as "broken pipe", which cannot be told apart
//! from a reply lost after the request went out: "may have applied".)
//!
//! TLS connections stay as the `redis` crate opens them, unwatched.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether a watched stream has ended: set once, never cleared.
#[derive(Clone, Default)]
pub(super) struct Ended(Arc<AtomicBool>);

impl Ended {
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A stream that sets its [`Ended`] flag at the end of the stream or at any
/// read or write error.
pub(super) struct Watched<S> {
    inner: S,
    ended: Ended,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let (room, before) = (buf.remaining(), buf.filled().len());
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            // Nothing read into a buffer with room: the end of the stream.
            Poll::Ready(Ok(())) if room > 0 && buf.filled().len() == before => self.ended.set(),
            Poll::Ready(Err(_)) => self.ended.set(),
            _ => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, bytes);
        if let Poll::Ready(Err(_)) = &polled {
            self.ended.set();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Err(_)) = &polled {
            self.ended.set();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ended.set();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A boxed stream the multiplexed connection can own.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Whether the async client opens this address's streams itself (plain TCP and
/// Unix sockets) and watches them; TLS streams are the redis crate's.
pub(super) fn is_watched(address: &redis::ConnectionAddr) -> bool {
    match address {
        redis::ConnectionAddr::Tcp(..) => true,
        #[cfg(unix)]
        redis::ConnectionAddr::Unix(_) => true,
        _ => false,
    }
}

/// Connects to a plain TCP (`TCP_NODELAY`: a command is one write, waiting to
/// coalesce it only adds latency) or Unix-socket address, trying each address a
/// host resolves to in turn, and watches the stream. The caller bounds it all
/// with one timeout, as the redis crate bounds its own connect.
pub(super) async fn connect(address: &redis::ConnectionAddr) -> io::Result<(Watched<Pin<Box<dyn Stream>>>, Ended)> {
    let inner: Pin<Box<dyn Stream>> = match address {
        redis::ConnectionAddr::Tcp(host, port) => Box::pin(connect_tcp(host, *port).await?),
        #[cfg(unix)]
        redis::ConnectionAddr::Unix(path) => Box::pin(tokio::net::UnixStream::connect(path).await?),
        other => return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{other} is not watched"))),
    };
    let ended = Ended::default();
    Ok((Watched { inner, ended: ended.clone() }, ended))
}

async fn connect_tcp(host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for resolved in tokio::net::lookup_host((host, port)).await? {
        match tokio::net::TcpStream::connect(resolved).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}
