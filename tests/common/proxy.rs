//! A TCP proxy in front of a test server that can stop forwarding, as a network
//! partition would: requests or replies, on the connections open now or on those
//! opened later. Data held back stays in the sockets' buffers; nothing is closed,
//! so clients wait for their timeouts exactly as behind a black hole.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What one proxied connection forwards.
struct Link {
    requests: AtomicBool,
    replies: AtomicBool,
}

struct Shared {
    stopped: AtomicBool,
    links: Mutex<Vec<Arc<Link>>>,
    /// What connections accepted from now on forward: (requests, replies).
    new_links: Mutex<(bool, bool)>,
    accepted: AtomicUsize,
    /// How long each chunk of data waits before it is passed on, in ms.
    delay_ms: AtomicU64,
}

/// The proxy; stops (closing every connection) when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            stopped: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
            new_links: Mutex::new((true, true)),
            accepted: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            while !accepting.stopped.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (requests, replies) = *accepting.new_links.lock().unwrap();
                        let link =
                            Arc::new(Link { requests: AtomicBool::new(requests), replies: AtomicBool::new(replies) });
                        accepting.links.lock().unwrap().push(Arc::clone(&link));
                        accepting.accepted.fetch_add(1, Ordering::AcqRel);
                        let server = TcpStream::connect(("127.0.0.1", upstream)).expect("connect upstream");
                        for (from, to, requests) in [(&client, &server, true), (&server, &client, false)] {
                            let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                            let (link, shared) = (Arc::clone(&link), Arc::clone(&accepting));
                            thread::spawn(move || pipe(from, to, &link, requests, &shared));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(2)),
                    Err(e) => panic!("proxy accept: {e}"),
                }
            }
        });
        Proxy { port, shared }
    }

    /// A DSN for the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sets what the connections open now forward.
    pub fn set_existing(&self, requests: bool, replies: bool) {
        for link in self.shared.links.lock().unwrap().iter() {
            link.requests.store(requests, Ordering::Release);
            link.replies.store(replies, Ordering::Release);
        }
    }

    /// Sets what connections opened from now on forward.
    pub fn set_new(&self, requests: bool, replies: bool) {
        *self.shared.new_links.lock().unwrap() = (requests, replies);
    }

    /// Cuts everything, open and new connections alike.
    pub fn partition(&self) {
        self.set_new(false, false);
        self.set_existing(false, false);
    }

    /// Delays every chunk of data by `delay`, each way: a slow network (or a
    /// loaded machine).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_ms.store(u64::try_from(delay.as_millis()).unwrap(), Ordering::Release);
    }

    /// How many connections the proxy has accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Acquire)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
    }
}

/// Whether the link forwards one direction (`requests`: client to server).
fn forwards(link: &Link, requests: bool) -> bool {
    if requests { link.requests.load(Ordering::Acquire) } else { link.replies.load(Ordering::Acquire) }
}

/// Copies `from` to `to` while the link forwards this direction; holds the data
/// back otherwise (also data read just before forwarding stopped). Either side
/// closing closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream, link: &Link, requests: bool, shared: &Shared) {
    from.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut buffer = [0u8; 16 * 1024];
    let mut held = Vec::new();
    while !shared.stopped.load(Ordering::Acquire) {
        if !forwards(link, requests) {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        if !held.is_empty() {
            thread::sleep(Duration::from_millis(shared.delay_ms.load(Ordering::Acquire)));
            if to.write_all(&held).is_err() {
                break;
            }
            held.clear();
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => held.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
