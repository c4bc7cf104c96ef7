//! Every model, end to end: each operation and its result.
//!
//! Runs against `REDIS_URL` when it is set, else starts a throwaway
//! `redis-server` on a free loopback port (and stops it at the end).
//!
//!     cargo run --example demo
//!     REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example demo

use std::time::Duration;

use redisext::serializer::{Json, Numeric, Raw, Str};
use redisext::testing::{RedisServer, ServerError};
use redisext::{
    BoundedQueue, Client, Counter, HashMap, Lock, LockToken, Map, ModelClass, ModelOptions, Overflow, Pool,
    PriorityQueue, Queue, Quota, RateLimiter, ReliableQueue, ResourcePool, Semaphore, SortedSet, Stack,
};

/// Prints an operation as written and what it returned.
macro_rules! show {
    ($op:expr) => {{
        let result = $op;
        println!("  {:<52} -> {:?}", one_line(stringify!($op)), result);
        result
    }};
}

/// Prints an operation that fails, and its error message.
macro_rules! show_error {
    ($op:expr) => {{
        match $op {
            Ok(_) => return Err(format!("{} should have failed", stringify!($op)).into()),
            Err(error) => println!("  {:<52} -> error: {error}", one_line(stringify!($op))),
        }
    }};
}

fn one_line(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() {
    if let Err(error) = run() {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, url) = match RedisServer::start_unless_env() {
        Ok(found) => found,
        Err(error @ ServerError::NotInstalled(_)) => {
            return Err(
                format!("{error}\n  or point the demo at a running server: REDIS_URL=redis://host:6379/0").into()
            );
        }
        Err(error) => return Err(error.into()),
    };
    println!("redisext demo against {}", redisext::Dsn::parse(&url)?);
    let client = Client::open(&url)?;
    // A namespace keeps the demo's keys apart from anything else on the server.
    let options = ModelOptions::new().namespace(format!("redisext-demo:{}:", std::process::id()));

    println!("\nCounter (a decimal string; scripts counter/*)");
    let visitors = ModelClass::<Counter>::new(&client).options(options.clone()).at("visitors")?;
    show!(visitors.incr(1)?);
    show!(visitors.incr(41)?);
    show!(visitors.get()?);

    println!("\nMap (one value at a string key; scripts map/*)");
    let greeting = ModelClass::<Map<Str>>::new(&client).options(options.clone()).at("greeting")?;
    show!(greeting.set("hello, Python and Rust")?);
    show!(greeting.get()?);
    show!(greeting.exists()?);
    let stock = ModelClass::<Map<Numeric>>::new(&client).options(options.clone()).at("stock")?;
    show!(stock.set(&10)?);
    show!(stock.incr(5)?);
    show!(stock.decr(3)?);
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct Profile {
        name: String,
        langs: Vec<String>,
    }
    let profile = ModelClass::<Map<Json<Profile>>>::new(&client).options(options.clone()).at("profile")?;
    show!(profile.set(&Profile { name: "Zoë".into(), langs: vec!["rust".into(), "python".into()] })?);
    show!(profile.get()?);

    println!("\nHashMap (fields of a hash; scripts hash_map/*)");
    let prices = ModelClass::<HashMap<Numeric>>::new(&client).options(options.clone()).at("prices")?;
    show!(prices.set("apple", &120)?);
    show!(prices.set("apple", &110)?);
    show!(prices.get("apple")?);
    show!(prices.remove("apple")?);
    show!(prices.get("apple")?);

    println!("\nPool (a set; scripts pool/*)");
    let workers = ModelClass::<Pool<Str>>::new(&client).options(options.clone()).at("workers")?;
    show!(workers.push("w1")?);
    show!(workers.push("w1")?);
    show!(workers.push("w2")?);
    show!(workers.contains("w2")?);
    show!(workers.members()?.len());
    show!(workers.pop()?.is_some());

    println!("\nSortedSet (a sorted set, f64 scores; scripts sorted_set/*)");
    let board = ModelClass::<SortedSet<Str>>::new(&client).options(options.clone()).at("board")?;
    show!(board.add("ada", 31.5)?);
    show!(board.add("bob", 12.0)?);
    show!(board.add("cy", 20.0)?);
    show!(board.members()?);
    show!(board.members_by_score(..=20.0)?);
    show!(board.members_by_score_with_scores(f64::NEG_INFINITY..f64::INFINITY)?);
    show!(board.length(15.0..)?);
    show!(board.contains("bob")?);
    show!(board.rem("bob")?);
    show!(board.clean_by_score(..25.0)?);
    show!(board.add("dee", 5.0)?);
    show!(board.truncate(1)?);
    show!(board.members_with_scores()?);
    show!(board.clean()?);

    println!("\nQueue (a list, first in first out; scripts queue/*)");
    let jobs = ModelClass::<Queue<Str>>::new(&client).options(options.clone()).at("jobs")?;
    show!(jobs.push("first")?);
    show!(jobs.push("second")?);
    show!(jobs.items()?);
    show!(jobs.pop()?);
    show!(jobs.size()?);

    println!("\nPriorityQueue (a sorted set, lowest priority out first, atomically; scripts priority_queue/*)");
    let tasks = ModelClass::<PriorityQueue<Str>>::new(&client).options(options.clone()).at("tasks")?;
    show!(tasks.push("later", 10)?);
    show!(tasks.push("urgent", 1)?);
    show!(tasks.pop()?);
    show!(tasks.pop()?);
    show!(tasks.pop()?);

    println!("\nStack (a list, last in first out; scripts stack/*)");
    let undo = ModelClass::<Stack<Numeric>>::new(&client).options(options.clone()).at("undo")?;
    show!(undo.push(&1)?);
    show!(undo.push(&2)?);
    show!(undo.pop()?);
    show!(undo.pop()?);

    println!("\nLock (a string that exists while held; scripts lock/*)");
    let lock = ModelClass::<Lock>::new(&client).options(options.clone()).at("invoice-lock")?;
    let token = show!(lock.acquire(Duration::from_secs(30))?).ok_or("the demo's lock is free")?;
    show!(lock.locked()?);
    show!(lock.acquire(None)?);
    show!(lock.acquire_wait(None, Duration::from_millis(50))?);
    show!(lock.extend(&token, Duration::from_secs(60))?);
    show!(lock.release(&token)?);
    show!(lock.release(&token)?);
    let guard = show!(lock.guard(Duration::from_secs(30), Duration::from_millis(500))?);
    show!(lock.locked()?);
    drop(guard); // releases the lock
    show!(lock.locked()?);
    // Fencing numbers grow with every acquisition (drawn from `{key}:fence`).
    let next = show!(lock.acquire(Duration::from_secs(30))?).ok_or("the demo's lock is free")?;
    show!(next.fence() > token.fence());
    show!(lock.release(&next)?);
    // A token kept before acquiring settles an acquire whose reply was lost.
    let mine = LockToken::generate();
    show!(lock.acquire_with(&mine, Duration::from_secs(30))?.map(|held| held.fence()));
    show!(lock.holds(&mine)?.map(|held| held.fence()));
    show!(lock.release(&mine)?);
    // A renewing guard outlives its expiry: a thread extends it every ttl / 3.
    let long_job =
        lock.renewing_guard(Duration::from_millis(300), Duration::from_millis(500))?.ok_or("the lock is free")?;
    std::thread::sleep(Duration::from_millis(700));
    show!(long_job.lost());
    show!(lock.locked()?);
    show!(long_job.release()?);
    Map::<Str>::new(&client, lock.key().sibling("fence")?.as_bytes())?.remove()?;

    println!("\nKey commands (every model; scripts key/*)");
    show!(greeting.expire(Duration::from_secs(60))?);
    show!(greeting.ttl()?);
    show!(greeting.persist()?);
    show!(greeting.rename("greeting-renamed")?);
    show!(greeting.exists()?);
    let renamed = ModelClass::<Map<Str>>::new(&client).options(options.clone()).at("greeting-renamed")?;
    show!(renamed.get()?);
    show!(renamed.remove()?);

    compound_models(&client, &options)?;

    println!("\nErrors are typed");
    show_error!(Counter::new(&client, ""));
    show_error!(Client::open("redis://user:secret@host:notaport/0"));
    let wrong_type = ModelClass::<Counter>::new(&client).options(options.clone()).at("profile")?;
    show_error!(wrong_type.incr(1));
    let not_json = ModelClass::<Map<Json<Profile>>>::new(&client).options(options.clone()).at("stock")?;
    show_error!(not_json.get());
    let wrong_type = ModelClass::<Queue<Str>>::new(&client).options(options.clone()).at("workers")?;
    show_error!(wrong_type.push("x"));
    show_error!(board.add("nan", f64::NAN));
    // A pop whose item cannot be decoded still removes it (one atomic step), and
    // hands its bytes back in the error so nothing is lost.
    ModelClass::<Queue<Raw>>::new(&client).options(options.clone()).at("inbox")?.push(b"\xff not json")?;
    let inbox = ModelClass::<Queue<Json<Profile>>>::new(&client).options(options.clone()).at("inbox")?;
    show_error!(inbox.pop());
    println!("\nCleaning up the demo's keys.");
    for key in [visitors.key(), stock.key(), profile.key(), workers.key(), jobs.key()] {
        Map::<Str>::new(&client, key.as_bytes())?.remove()?;
    }
    Ok(())
}

/// The compound models: several keys in one hash slot, every step one script.
fn compound_models(client: &Client, options: &ModelOptions) -> Result<(), Box<dyn std::error::Error>> {
    let lease = Duration::from_secs(30);

    println!("\nResourcePool (leases with deadlines and fencing numbers; scripts resource_pool/*)");
    let printers = ModelClass::<ResourcePool<Str>>::new(client).options(options.clone()).at("printers")?;
    show!(printers.add("laser-1")?);
    show!(printers.add("laser-2")?);
    let first = show!(printers.checkout(lease)?).ok_or("no idle printer")?;
    let second = show!(printers.checkout(lease)?).ok_or("no idle printer")?;
    show!(printers.checkout(lease)?);
    show!(printers.counts()?);
    show!(printers.extend(&first, Duration::from_secs(60))?.is_some());
    show!(printers.remove("laser-2")?);
    show!(printers.checkin(&second)?);
    show!(printers.checkin(&first)?);
    show!(printers.checkin(&first)?);
    show!(printers.checkout_wait(lease, Duration::from_millis(50))?.map(|lease| lease.fence()));
    show!(printers.clear()?);

    println!("\nBoundedQueue (capacity fixed at creation; scripts bounded_queue/*)");
    let uploads = BoundedQueue::<Str>::with_options(client, "uploads", 2, Overflow::Reject, options.clone())?;
    show!(uploads.push_many(["a.png", "b.png"])?);
    show_error!(uploads.push("c.png"));
    show!(uploads.size()?);
    show!(uploads.pop()?);
    show!(uploads.stored_settings()?);
    let other_capacity = BoundedQueue::<Str>::with_options(client, "uploads", 5, Overflow::Reject, options.clone())?;
    show_error!(other_capacity.push("d.png"));
    let recent = BoundedQueue::<Str>::with_options(client, "recent", 2, Overflow::EvictOldest, options.clone())?;
    show!(recent.push_many(["x", "y"])?);
    show!(recent.push("z")?);
    show!(recent.pop_wait(Duration::from_millis(50))?);
    show!(uploads.clear()? + recent.clear()?);

    println!("\nReliableQueue (at-least-once: pop, ack, nack, dead letters; scripts reliable_queue/*)");
    let jobs = ModelClass::<ReliableQueue<Str>>::new(client)
        .options(options.clone())
        .at("work-items")?
        .with_max_deliveries(2)?;
    show!(jobs.push_many(["resize 1.png", "resize 2.png"])?);
    let job = show!(jobs.pop(lease)?).ok_or("no job")?;
    show!(jobs.nack(job.receipt())?);
    let job = show!(jobs.pop(lease)?).ok_or("no job")?;
    show!(jobs.ack(job.receipt())?);
    let job = show!(jobs.pop(lease)?).ok_or("no job")?;
    show!(jobs.extend(job.receipt(), Duration::from_secs(60))?.is_some());
    show!(jobs.counts()?);
    show!(jobs.nack(job.receipt())?);
    let job = show!(jobs.pop(lease)?).ok_or("no job")?;
    show!(jobs.nack(job.receipt())?);
    show!(jobs.pop_dead()?);
    show!(jobs.clear()?);

    println!("\nSemaphore (N permits that lapse; scripts semaphore/*)");
    let downloads = Semaphore::with_options(client, "downloads", 2, options.clone())?;
    let permit = show!(downloads.acquire(lease)?).ok_or("no permit")?;
    show!(downloads.acquire(lease)?.map(|permit| permit.id()));
    show!(downloads.acquire(lease)?);
    show!(downloads.held()?);
    show!(downloads.extend(&permit, Duration::from_secs(60))?.is_some());
    show!(downloads.release(&permit)?);
    show!(downloads.acquire_wait(lease, Duration::from_millis(50))?.map(|permit| permit.id()));
    show!(downloads.clear()?);

    println!("\nRateLimiter (GCRA on server time; script rate_limiter/acquire)");
    let api =
        RateLimiter::with_options(client, "api", Quota::new(10, Duration::from_secs(60)).burst(2), options.clone())?;
    show!(api.acquire(1)?);
    show!(api.acquire(1)?);
    show!(api.acquire(1)?);
    show!(api.reset()?);

    // `clear` keeps the counters behind fencing numbers and ids (so they never
    // repeat); the demo removes them too, to leave nothing behind.
    for (key, counter) in [(printers.key(), "fence"), (jobs.key(), "ids"), (downloads.key(), "ids")] {
        Map::<Str>::new(client, key.sibling(counter)?.as_bytes())?.remove()?;
    }
    Ok(())
}
