//! [`PopStream`]: pops as a `futures::Stream`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;

use super::{Settings, Shutdown};
use crate::async_client::{AsyncClient, Pending};
use crate::backend::AsyncBackend;
use crate::error::Result;
use crate::model::reliable_queue::ReliableQueue;
use crate::receipt::Delivered;
use crate::serializer::Serializer;

type Pop<T> = Box<dyn FnMut() -> Pending<Option<T>> + Send>;

/// The items a pop returns, one after another, as a `futures::Stream` (feature
/// `tokio`): each `next()` pops until an item comes, yields `Ok(item)`, and a
/// failed pop yields `Err` (the stream then pauses 500 ms before popping again).
/// The stream ends only when its [`Shutdown`] (see [`until`](Self::until)) is
/// triggered; it checks between pops.
///
/// - [`PopStream::polling`] takes a pop that returns at once (`Queue::pop`,
///   `Stack::pop`, `PriorityQueue::pop`: those models send no signal to wait on)
///   and, while the model is empty, polls it with backoff: 2 ms doubling to
///   [`max_pause`](Self::max_pause) (100 ms by default), back to 2 ms after an item.
/// - [`PopStream::waiting`] takes a pop that waits by itself, such as
///   `ReliableQueue::pop_wait` (see [`deliveries`]), and calls it again when it
///   times out.
///
/// Dropping the stream while a pop is in flight drops that pop: for a plain
/// model the item it took may then be lost (as with any pop whose reply is
/// lost), for a reliable queue it is delivered again after its deadline.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use futures_util::StreamExt;
/// use redisext::{AsyncClient, Queue, serializer::Str, worker::PopStream};
///
/// let client = AsyncClient::open(&url)?;
/// let jobs = Queue::<Str, _>::new(&client, "jobs")?;
/// jobs.push("first").await?;
/// jobs.push("second").await?;
///
/// let popper = jobs.clone();
/// let mut items = PopStream::polling(move || popper.pop());
/// assert_eq!(items.next().await.transpose()?.as_deref(), Some("first"));
/// assert_eq!(items.next().await.transpose()?.as_deref(), Some("second"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PopStream<T> {
    pop: Pop<T>,
    /// Whether an empty pop is followed by a pause (the pop does not wait itself).
    polls: bool,
    first_pause: Duration,
    max_pause: Duration,
    next_pause: Duration,
    shutdown: Option<Shutdown>,
    state: State<T>,
}

enum State<T> {
    Idle,
    Popping(Pending<Option<T>>),
    Pausing(Pin<Box<tokio::time::Sleep>>),
}

impl<T: Send + 'static> PopStream<T> {
    /// A stream of what `pop` returns, polling with backoff while it returns
    /// `None` (see [`PopStream`]).
    pub fn polling(pop: impl FnMut() -> Pending<Option<T>> + Send + 'static) -> PopStream<T> {
        PopStream::new(Box::new(pop), true)
    }

    /// A stream of what `pop` returns, for a pop that waits by itself: called
    /// again at once when it returns `None`.
    pub fn waiting(pop: impl FnMut() -> Pending<Option<T>> + Send + 'static) -> PopStream<T> {
        PopStream::new(Box::new(pop), false)
    }

    fn new(pop: Pop<T>, polls: bool) -> PopStream<T> {
        let first_pause = Duration::from_millis(2);
        PopStream {
            pop,
            polls,
            first_pause,
            max_pause: Duration::from_millis(100),
            next_pause: first_pause,
            shutdown: None,
            state: State::Idle,
        }
    }

    /// The longest pause between two polls of an empty model (default 100 ms):
    /// how late an item pushed into an empty model may be seen.
    pub fn max_pause(mut self, max_pause: Duration) -> PopStream<T> {
        self.max_pause = max_pause.max(self.first_pause);
        self
    }

    /// Ends the stream once `shutdown` is triggered (checked before each pop; a
    /// pop in flight is finished, and its item yielded).
    pub fn until(mut self, shutdown: &Shutdown) -> PopStream<T> {
        self.shutdown = Some(shutdown.clone());
        self
    }

    fn pause(&mut self, pause: Duration) {
        self.state = State::Pausing(Box::pin(tokio::time::sleep(pause)));
    }
}

impl<T: Send + 'static> Stream for PopStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        // Every field is Unpin (the futures are boxed).
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Idle => {
                    if this.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
                        return Poll::Ready(None);
                    }
                    this.state = State::Popping((this.pop)());
                }
                State::Popping(pending) => match ready!(Pin::new(pending).poll(cx)) {
                    Ok(Some(item)) => {
                        this.next_pause = this.first_pause;
                        this.state = State::Idle;
                        return Poll::Ready(Some(Ok(item)));
                    }
                    Ok(None) if this.polls => {
                        let pause = this.next_pause;
                        this.next_pause = (pause * 2).min(this.max_pause);
                        this.pause(pause);
                    }
                    Ok(None) => this.state = State::Idle,
                    Err(error) => {
                        this.pause(Settings::ERROR_PAUSE);
                        return Poll::Ready(Some(Err(error)));
                    }
                },
                State::Pausing(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state = State::Idle;
                }
            }
        }
    }
}

impl<T> std::fmt::Debug for PopStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopStream").field("polls", &self.polls).field("max_pause", &self.max_pause).finish()
    }
}

/// The deliveries of a reliable queue as a stream: each in flight for
/// `visibility`, popped with `pop_wait` (woken by pushes and nacks, rechecking
/// every 100 ms), one at a time. Ack, nack or extend each with its receipt; for
/// handlers run concurrently with acks, retries and extensions done for you, use
/// a [`Worker`](super::Worker).
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use redisext::{AsyncClient, ReliableQueue, serializer::Str, worker::{Shutdown, deliveries}};
///
/// let client = AsyncClient::open(&url)?;
/// let orders = ReliableQueue::<Str, _>::new(&client, "orders")?;
/// orders.push("order 1").await?;
///
/// let shutdown = Shutdown::new();
/// let mut stream = deliveries(&orders, Duration::from_secs(30)).until(&shutdown);
/// let order = stream.next().await.expect("never ends before the shutdown")?;
/// assert_eq!(order.value(), "order 1");
/// assert!(orders.ack(order.receipt()).await?);
/// shutdown.trigger();
/// assert!(stream.next().await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deliveries<S, B>(
    queue: &ReliableQueue<S, AsyncClient<B>>,
    visibility: Duration,
) -> PopStream<Delivered<S::Owned>>
where
    S: Serializer + 'static,
    S::Owned: Send + 'static,
    B: AsyncBackend,
{
    let queue = queue.clone();
    // Short waits, so that a shutdown is seen within a second on an empty queue.
    let idle_wait = Settings::new(1).idle_wait;
    PopStream::waiting(move || queue.pop_wait(visibility, idle_wait))
}
