//! Shared waiter connections: however many tasks or threads of one client wait
//! on signal keys, each group of keys (all of them on one server, one hash
//! slot's in a cluster) is watched by one connection running `BLPOP key…
//! timeout`, and each element it pops wakes one waiter of that key. The async
//! client drives a group on a tokio task, the blocking client on a thread.
//!
//! Why no wake-up is lost: an element popped for a key goes to that key's oldest
//! registered waiter. A waiter leaves the registry itself (its pause elapsed, or
//! its future was dropped) only under the lock the driver delivers under, so an
//! element is either delivered before it left (and a waiter dropped after
//! delivery hands it on to the next waiter of the key) or finds it gone and goes
//! to the next one. With no waiter left on the key it is kept for the next
//! waiter that registers there, which then returns at once and runs its
//! operation again. Waits recheck on their own schedule anyway (no script signals
//! a deadline passing), so a wake-up only ever comes early, never replaces one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

#[cfg(feature = "tokio")]
use crate::backend::{AsyncBackend, AsyncSession};
use crate::backend::{Backend, Request, Session};
use crate::call::Node;
use crate::key::{Key, hash_slot};
use crate::wire::{CommandError, Reply};

/// The longest one shared `BLPOP` blocks: a key that a waiter registers while it
/// is in flight is watched from the next one, so this bounds how late such a
/// waiter may see a signal (the keys already watched see theirs at once).
const SLICE: Duration = Duration::from_millis(20);

/// How long a driver with nothing to wait on keeps its connection before it
/// closes it and ends (waits that come and go reuse it).
const IDLE: Duration = Duration::from_secs(5);

/// How long a driver pauses after its connection failed before opening another.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// How a waiter's pause ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// An element of its signal key was popped for it: run the operation again.
    Signalled,
    /// Its pause passed without a signal.
    Elapsed,
    /// The shared connection failed (or could not be started): pause otherwise.
    Failed,
}

/// The waiter groups of one client, made as keys need them.
pub(crate) struct Waiters<B> {
    groups: Mutex<HashMap<u16, Arc<Group>>>,
    /// The backend the drivers open their connections on.
    backend: Weak<B>,
}

impl<B> Waiters<B> {
    pub(crate) fn new(backend: &Arc<B>) -> Waiters<B> {
        Waiters { groups: Mutex::new(HashMap::new()), backend: Arc::downgrade(backend) }
    }

    /// The group `signal` belongs to: its hash slot's in a cluster, else the one.
    fn group(&self, signal: &Key, cluster: bool) -> Arc<Group> {
        let slot = if cluster { hash_slot(signal.as_bytes()) } else { 0 };
        Arc::clone(lock(&self.groups).entry(slot).or_insert_with(|| Arc::new(Group::default())))
    }
}

impl<B> Drop for Waiters<B> {
    /// The client is gone (no wait can be in flight: each holds the client's
    /// waiters): its drivers close their connections now, not after [`IDLE`].
    fn drop(&mut self) {
        for group in lock(&self.groups).values() {
            lock(&group.state).closed = true;
            group.registered_notify();
        }
    }
}

#[cfg(feature = "tokio")]
impl<B: AsyncBackend> Waiters<B> {
    /// Waits up to `block` for an element of `signal`, on the group's shared
    /// connection. Dropping the future leaves nothing behind: its registration
    /// is removed, and an element already popped for it goes to another waiter.
    pub(crate) async fn wait(&self, signal: &Key, block: Duration) -> Woken {
        let Some(backend) = self.backend.upgrade() else { return Woken::Failed };
        let group = self.group(signal, backend.is_cluster());
        let start = |group: &Arc<Group>| match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(drive_async(Arc::clone(group), backend));
                true
            }
            Err(_) => false,
        };
        let Some(registration) = Group::register(&group, signal, start) else { return Woken::Signalled };
        // Woken or not, what counts is what the registry says under its lock.
        let _ = tokio::time::timeout(block, registration.entry.notify.notified()).await;
        registration.finish()
    }
}

impl<B: Backend> Waiters<B> {
    /// Blocks the thread up to `block` for an element of `signal`, on the
    /// group's shared connection.
    pub(crate) fn wait_blocking(&self, signal: &Key, block: Duration) -> Woken {
        let Some(backend) = self.backend.upgrade() else { return Woken::Failed };
        let group = self.group(signal, backend.is_cluster());
        let start = |group: &Arc<Group>| {
            let group = Arc::clone(group);
            std::thread::Builder::new()
                .name("redisext-waiters".into())
                .spawn(move || drive_blocking(group, backend))
                .is_ok()
        };
        let Some(registration) = Group::register(&group, signal, start) else { return Woken::Signalled };
        let outcome = lock(&registration.entry.outcome);
        let (outcome, _) = registration
            .entry
            .woke
            .wait_timeout_while(outcome, block, |outcome| outcome.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(outcome);
        registration.finish()
    }
}

/// The waiters of one group of keys and its driver.
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    /// Tells an idle blocking driver that a waiter registered (or the client is gone).
    registered: Condvar,
    /// Tells an idle async driver the same.
    #[cfg(feature = "tokio")]
    registered_async: tokio::sync::Notify,
}

#[derive(Default)]
struct GroupState {
    /// Every key with at least one waiter; each key's waiters oldest first.
    keys: HashMap<Key, BTreeMap<u64, Arc<Entry>>>,
    /// Elements popped for keys whose waiters had all gone: one each for the
    /// next waiters there.
    kept: HashMap<Key, u32>,
    next_id: u64,
    /// A driver is running for the group.
    driven: bool,
    /// The client is gone: the driver ends.
    closed: bool,
}

/// One waiting task or thread. Its outcome is written under the group's lock.
#[derive(Default)]
struct Entry {
    outcome: Mutex<Option<Woken>>,
    woke: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl Entry {
    fn wake(&self, outcome: Woken) {
        *lock(&self.outcome) = Some(outcome);
        self.woke.notify_one();
        #[cfg(feature = "tokio")]
        self.notify.notify_one();
    }
}

impl Group {
    fn registered_notify(&self) {
        self.registered.notify_one();
        #[cfg(feature = "tokio")]
        self.registered_async.notify_one();
    }

    /// Registers a waiter on `signal` and makes sure a driver runs (`start`
    /// starts one, false when it cannot); `None` when an element kept for this
    /// key is taken at once instead.
    fn register(group: &Arc<Group>, signal: &Key, start: impl FnOnce(&Arc<Group>) -> bool) -> Option<Registration> {
        let mut state = lock(&group.state);
        if let Some(kept) = state.kept.get_mut(signal) {
            *kept -= 1;
            if *kept == 0 {
                state.kept.remove(signal);
            }
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let entry = Arc::new(Entry::default());
        state.keys.entry(signal.clone()).or_default().insert(id, Arc::clone(&entry));
        let registration = Registration { group: Arc::clone(group), key: signal.clone(), id, entry, done: false };
        if !state.driven {
            state.driven = start(group);
            if !state.driven {
                // No driver: this waiter pauses otherwise.
                state.remove(signal, id);
                registration.entry.wake(Woken::Failed);
            }
        }
        drop(state);
        group.registered_notify();
        Some(registration)
    }

    /// What the driver does after one `BLPOP`.
    fn popped(&self, result: Result<Reply, CommandError>) -> AfterPop {
        let mut state = lock(&self.state);
        match result {
            Ok(Reply::Nil) => AfterPop::Again,
            Ok(Reply::Array(popped)) if popped.len() == 2 => match popped.first().map(|key| match key {
                Reply::Bulk(key) => Key::new(key).ok(),
                _ => None,
            }) {
                Some(Some(key)) => {
                    state.deliver(&key);
                    AfterPop::Again
                }
                _ => {
                    state.fail_all();
                    AfterPop::Reconnect
                }
            },
            // A connection failure, a reply of another shape or a refusal (a
            // signal key of another type; a master that became a replica, whose
            // refusal only a new connection routed to the master ends): these
            // waits pause otherwise, and the driver reconnects after a pause.
            Ok(_) | Err(_) => {
                state.fail_all();
                AfterPop::Reconnect
            }
        }
    }

    /// The keys to wait on next, or why there are none: the driver should idle
    /// (`Ok(None)`) or end (`Err`: it has told the group).
    fn next_keys(&self) -> Result<Option<Vec<Key>>, ()> {
        let mut state = lock(&self.state);
        if !state.keys.is_empty() {
            return Ok(Some(state.keys.keys().cloned().collect()));
        }
        if state.closed {
            state.end();
            return Err(());
        }
        Ok(None)
    }

    /// After an idle wait that may have timed out: ends the driver when still idle.
    fn end_if_idle(&self, timed_out: bool) -> Result<(), ()> {
        let mut state = lock(&self.state);
        if (timed_out || state.closed) && state.keys.is_empty() {
            state.end();
            return Err(());
        }
        Ok(())
    }
}

/// What a driver does after one `BLPOP`.
enum AfterPop {
    /// Wait again on the same connection.
    Again,
    /// Drop the connection, pause, and open another.
    Reconnect,
}

impl GroupState {
    fn remove(&mut self, key: &Key, id: u64) -> Option<Arc<Entry>> {
        let waiting = self.keys.get_mut(key)?;
        let removed = waiting.remove(&id);
        if waiting.is_empty() {
            self.keys.remove(key);
        }
        removed
    }

    /// One element popped from `key`: for its oldest waiter, else kept.
    fn deliver(&mut self, key: &Key) {
        let oldest = self.keys.get_mut(key).and_then(|waiting| waiting.pop_first());
        if self.keys.get(key).is_some_and(BTreeMap::is_empty) {
            self.keys.remove(key);
        }
        match oldest {
            Some((_, entry)) => entry.wake(Woken::Signalled),
            None => *self.kept.entry(key.clone()).or_default() += 1,
        }
    }

    /// Ends every wait with [`Woken::Failed`]: the connection they relied on is gone.
    fn fail_all(&mut self) {
        for (_, waiting) in self.keys.drain() {
            for entry in waiting.into_values() {
                entry.wake(Woken::Failed);
            }
        }
    }

    /// The driver ends: the next waiter starts another.
    fn end(&mut self) {
        self.driven = false;
        self.fail_all();
        self.kept.clear();
    }
}

/// A waiter's place in its group: removed when the wait ends or its future is dropped.
struct Registration {
    group: Arc<Group>,
    key: Key,
    id: u64,
    entry: Arc<Entry>,
    done: bool,
}

impl Registration {
    /// How the wait ended: signalled or failed if the driver said so, else elapsed
    /// (and no longer registered).
    fn finish(mut self) -> Woken {
        self.done = true;
        let mut state = lock(&self.group.state);
        if let Some(outcome) = lock(&self.entry.outcome).take() {
            return outcome;
        }
        state.remove(&self.key, self.id);
        Woken::Elapsed
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped while waiting (a cancelled future).
        let mut state = lock(&self.group.state);
        let delivered = lock(&self.entry.outcome).take();
        if delivered == Some(Woken::Signalled) {
            // Popped for this waiter, which will never run again: the next one's.
            state.deliver(&self.key);
        } else {
            state.remove(&self.key, self.id);
        }
    }
}

/// Ends a driver that did not end itself (a task dropped with its runtime, a
/// panic): the group knows none runs, and the waits it served end.
struct Driving {
    group: Arc<Group>,
    ended: bool,
}

impl Drop for Driving {
    fn drop(&mut self) {
        if !self.ended {
            lock(&self.group.state).end();
        }
    }
}

/// The async driver of one group: `BLPOP` over every key with a waiter, again
/// and again, each element delivered to one waiter; closes its connection and
/// ends after [`IDLE`] with no waiter, or once the client is gone.
#[cfg(feature = "tokio")]
async fn drive_async<B: AsyncBackend>(group: Arc<Group>, backend: Arc<B>) {
    let mut driving = Driving { group: Arc::clone(&group), ended: false };
    let mut session: Option<B::Session> = None;
    loop {
        let keys = match group.next_keys() {
            Ok(Some(keys)) => keys,
            Ok(None) => {
                let timed_out = tokio::time::timeout(IDLE, group.registered_async.notified()).await.is_err();
                if group.end_if_idle(timed_out).is_err() {
                    driving.ended = true;
                    return;
                }
                continue;
            }
            Err(()) => {
                driving.ended = true;
                return;
            }
        };
        if session.is_none() {
            match backend.dedicated_session(Node::Master, SLICE).await {
                Ok(opened) => session = Some(opened),
                Err(error) => {
                    group.popped(Err(error));
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(current) = session.as_mut() else { continue };
        match group.popped(current.query(&Request::PopAny(&keys, SLICE)).await) {
            // The waiter just woken sends its operation before the next BLPOP
            // goes out: the wake-up is what is waited for.
            AfterPop::Again => tokio::task::yield_now().await,
            AfterPop::Reconnect => {
                session = None;
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

/// The blocking driver of one group, on a thread of its own: as [`drive_async`].
fn drive_blocking<B: Backend>(group: Arc<Group>, backend: Arc<B>) {
    let mut driving = Driving { group: Arc::clone(&group), ended: false };
    let mut session: Option<B::Session<'_>> = None;
    loop {
        let keys = match group.next_keys() {
            Ok(Some(keys)) => keys,
            Ok(None) => {
                let state = lock(&group.state);
                let (state, waited) = group
                    .registered
                    .wait_timeout_while(state, IDLE, |state| state.keys.is_empty() && !state.closed)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                drop(state);
                if group.end_if_idle(waited.timed_out()).is_err() {
                    driving.ended = true;
                    return;
                }
                continue;
            }
            Err(()) => {
                driving.ended = true;
                return;
            }
        };
        if session.is_none() {
            match backend.dedicated_session(Node::Master, SLICE) {
                Ok(opened) => session = Some(opened),
                Err(error) => {
                    group.popped(Err(error));
                    std::thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            }
        }
        let Some(current) = session.as_mut() else { continue };
        match group.popped(current.query(&Request::PopAny(&keys, SLICE))) {
            AfterPop::Again => {}
            AfterPop::Reconnect => {
                session = None;
                std::thread::sleep(RECONNECT_PAUSE);
            }
        }
    }
}

/// The lock, even after a panic elsewhere while it was held (the state stays
/// consistent: every change is made whole under it).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    fn key(name: &str) -> Key {
        Key::new(name).unwrap()
    }

    fn registered(group: &Arc<Group>, signal: &Key) -> Registration {
        let mut state = lock(&group.state);
        let id = state.next_id;
        state.next_id += 1;
        let entry = Arc::new(Entry::default());
        state.keys.entry(signal.clone()).or_default().insert(id, Arc::clone(&entry));
        Registration { group: Arc::clone(group), key: signal.clone(), id, entry, done: false }
    }

    #[test]
    fn an_element_goes_to_the_oldest_waiter_and_a_dropped_waiter_hands_its_own_on() {
        let group = Arc::new(Group::default());
        let signal = key("s");
        let (first, second, third) =
            (registered(&group, &signal), registered(&group, &signal), registered(&group, &signal));
        lock(&group.state).deliver(&signal);
        // Popped for the first, which is dropped before it looks: the second's now.
        drop(first);
        assert_eq!(second.finish(), Woken::Signalled);
        assert_eq!(third.finish(), Woken::Elapsed);
        assert!(lock(&group.state).keys.is_empty(), "nothing left registered");
    }

    #[test]
    fn an_element_nobody_waits_for_is_kept_for_the_next_waiter_of_its_key() {
        let group = Arc::new(Group::default());
        let (signal, other) = (key("s"), key("other"));
        let waiter = registered(&group, &signal);
        // Left (its pause elapsed) just before the element was popped for it.
        assert_eq!(waiter.finish(), Woken::Elapsed);
        lock(&group.state).deliver(&signal);
        let start = |_: &Arc<Group>| panic!("no driver is needed for a kept element");
        assert!(Group::register(&group, &signal, start).is_none(), "takes the kept element at once");
        // Kept once, taken once; and only for its own key.
        assert!(lock(&group.state).kept.is_empty());
        let mut state = lock(&group.state);
        state.deliver(&other);
        assert_eq!(state.kept.get(&other), Some(&1));
        assert_eq!(state.kept.get(&signal), None);
    }

    #[test]
    fn a_waiter_dropped_before_any_element_leaves_nothing_registered() {
        let group = Arc::new(Group::default());
        let signal = key("s");
        drop(registered(&group, &signal));
        let state = lock(&group.state);
        assert!(state.keys.is_empty() && state.kept.is_empty());
    }

    /// Peak `connected_clients` (less the one asking) while `until` is false.
    fn sample_connections(server: &RedisServer, until: &std::sync::atomic::AtomicBool) -> u64 {
        let mut peak = 0;
        while !until.load(std::sync::atomic::Ordering::Relaxed) {
            let connected: u64 = server.info_field("clients", "connected_clients").unwrap().parse().unwrap();
            peak = peak.max(connected.saturating_sub(1));
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    }

    /// `threads` threads wait on `keys` (round robin) with no recheck, on the
    /// blocking client's waiters; one element is pushed per waiter.
    fn every_element_wakes_one_thread(keys: &[Key], threads: usize) {
        use crate::backend::RedisBackend;
        use crate::connection::{Dsn, Reuse, Timeouts};
        let server = Arc::new(RedisServer::start().unwrap());
        let dsn = Dsn::parse(&server.url()).unwrap();
        let backend = Arc::new(RedisBackend::new(&dsn, None, Reuse::default(), Timeouts::default()).unwrap());
        let hub = Arc::new(Waiters::new(&backend));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (server, done) = (Arc::clone(&server), Arc::clone(&done));
            std::thread::spawn(move || sample_connections(&server, &done))
        };
        let waiting: Vec<_> = (0..threads)
            .map(|i| {
                let (hub, signal) = (Arc::clone(&hub), keys[i % keys.len()].clone());
                std::thread::spawn(move || hub.wait_blocking(&signal, Duration::from_secs(3600)))
            })
            .collect();
        let names: Vec<String> =
            (0..threads).map(|i| String::from_utf8(keys[i % keys.len()].as_bytes().to_vec()).unwrap()).collect();
        let pushes: Vec<[&str; 3]> = names.iter().map(|name| ["RPUSH", name.as_str(), "1"]).collect();
        server.commands(&pushes.iter().map(|push| &push[..]).collect::<Vec<_>>()).unwrap();
        for thread in waiting {
            // A lost element would leave its thread waiting (an hour).
            assert_eq!(thread.join().unwrap(), Woken::Signalled);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.join().unwrap();
        for signal in keys {
            assert_eq!(server.command_bytes(&[b"LLEN", signal.as_bytes()]).unwrap(), Reply::Int(0), "all taken");
        }
        // The waiter connection, the pushes' connection, and the sampler's
        // previous one if the server has not reaped it yet.
        assert!(peak <= 3, "{threads} waiting threads held {peak} connections");
    }

    #[test]
    fn sixty_four_threads_on_one_key_share_one_connection_and_each_gets_one_element() {
        every_element_wakes_one_thread(&[key("{one}:signal")], 64);
    }

    #[test]
    fn sixty_four_threads_on_as_many_keys_share_one_connection_and_each_gets_one_element() {
        let keys: Vec<Key> = (0..64).map(|i| key(&format!("{{t{i}}}:signal"))).collect();
        every_element_wakes_one_thread(&keys, 64);
    }

    /// The async client's waiters, on a real server.
    #[cfg(feature = "tokio")]
    mod on_tokio {
        use super::*;
        use crate::backend::RedisAsyncBackend;
        use crate::connection::{AsyncReuse, Dsn, Timeouts};
        use crate::testing::RedisServer;

        fn backend_for(url: &str) -> RedisAsyncBackend {
            RedisAsyncBackend::new(&Dsn::parse(url).unwrap(), None, AsyncReuse::default(), Timeouts::default()).unwrap()
        }

        /// `waiters` tasks wait on `keys` (round robin) with no recheck; one element
        /// is pushed per waiter. Every wait must end signalled, every element be
        /// taken, on one waiter connection.
        async fn every_element_wakes_one_waiter(keys: &[Key], waiters: usize) {
            let server = Arc::new(RedisServer::start().unwrap());
            let backend = Arc::new(backend_for(&server.url()));
            let hub = Arc::new(Waiters::new(&backend));
            let tasks: Vec<_> = (0..waiters)
                .map(|i| {
                    let (hub, signal) = (Arc::clone(&hub), keys[i % keys.len()].clone());
                    tokio::spawn(async move { hub.wait(&signal, Duration::from_secs(3600)).await })
                })
                .collect();
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let sampler = {
                let (server, done) = (Arc::clone(&server), Arc::clone(&done));
                tokio::task::spawn_blocking(move || sample_connections(&server, &done))
            };
            // Pushed while the waiters register and wait: an element may come before
            // its waiter, which then takes it as soon as it registers.
            let names: Vec<String> =
                (0..waiters).map(|i| String::from_utf8(keys[i % keys.len()].as_bytes().to_vec()).unwrap()).collect();
            let pushes: Vec<[&str; 3]> = names.iter().map(|name| ["RPUSH", name.as_str(), "1"]).collect();
            server.commands(&pushes.iter().map(|push| &push[..]).collect::<Vec<_>>()).unwrap();
            for task in tasks {
                // A lost element would leave its waiter waiting (an hour): this never ends.
                assert_eq!(task.await.unwrap(), Woken::Signalled);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let peak = sampler.await.unwrap();
            for signal in keys {
                assert_eq!(server.command_bytes(&[b"LLEN", signal.as_bytes()]).unwrap(), Reply::Int(0), "all taken");
            }
            assert!(lock(&hub.groups).values().all(|group| lock(&group.state).kept.is_empty()), "nothing kept over");
            // The waiter connection, the pushes' connection, and the sampler's
            // previous one if the server has not reaped it yet.
            assert!(peak <= 3, "{waiters} waiters held {peak} connections");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_hundred_fifty_waiters_on_one_key_share_one_connection_and_each_gets_one_element() {
            every_element_wakes_one_waiter(&[key("{one}:signal")], 250).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_hundred_fifty_waiters_on_as_many_keys_share_one_connection_and_each_gets_one_element() {
            let keys: Vec<Key> = (0..250).map(|i| key(&format!("{{k{i}}}:signal"))).collect();
            every_element_wakes_one_waiter(&keys, 250).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dropped_waiters_neither_keep_a_registration_nor_swallow_an_element() {
            let server = RedisServer::start().unwrap();
            let backend = Arc::new(backend_for(&server.url()));
            let hub = Arc::new(Waiters::new(&backend));
            let signal = key("{drop}:signal");
            let spawn = |hub: &Arc<Waiters<RedisAsyncBackend>>| {
                let (hub, signal) = (Arc::clone(hub), signal.clone());
                tokio::spawn(async move { hub.wait(&signal, Duration::from_secs(3600)).await })
            };
            let dropped: Vec<_> = (0..100).map(|_| spawn(&hub)).collect();
            let kept: Vec<_> = (0..100).map(|_| spawn(&hub)).collect();
            server
                .wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1"))
                .unwrap();
            for task in &dropped {
                task.abort();
            }
            for task in dropped {
                assert!(task.await.unwrap_err().is_cancelled());
            }
            for _ in 0..100 {
                server.command(&["RPUSH", "{drop}:signal", "1"]).unwrap();
            }
            for task in kept {
                assert_eq!(task.await.unwrap(), Woken::Signalled);
            }
            let group = Arc::clone(&lock(&hub.groups)[&0]);
            let state = lock(&group.state);
            assert!(state.keys.is_empty(), "no registration left behind");
            assert!(state.kept.is_empty(), "no element left over");
            assert_eq!(server.command(&["LLEN", "{drop}:signal"]).unwrap(), Reply::Int(0));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_wait_whose_connection_is_killed_fails_and_the_next_one_reconnects() {
            let server = RedisServer::start().unwrap();
            let backend = Arc::new(backend_for(&server.url()));
            let hub = Arc::new(Waiters::new(&backend));
            let signal = key("{kill}:signal");
            let waiter = {
                let (hub, signal) = (Arc::clone(&hub), signal.clone());
                tokio::spawn(async move { hub.wait(&signal, Duration::from_secs(3600)).await })
            };
            server
                .wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1"))
                .unwrap();
            server.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]).unwrap();
            assert_eq!(waiter.await.unwrap(), Woken::Failed);
            let waiter = {
                let (hub, signal) = (Arc::clone(&hub), signal.clone());
                tokio::spawn(async move { hub.wait(&signal, Duration::from_secs(3600)).await })
            };
            server
                .wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1"))
                .unwrap();
            server.command(&["RPUSH", "{kill}:signal", "1"]).unwrap();
            assert_eq!(waiter.await.unwrap(), Woken::Signalled);
        }
    }
}
