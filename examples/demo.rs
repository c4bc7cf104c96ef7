//! Every model, end to end: each operation and its result.
//!
//! Runs against `REDIS_URL` when it is set, else starts a throwaway
//! `redis-server` on a free loopback port (and stops it at the end).
//!
//!     cargo run --example demo
//!     REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example demo

use std::time::Duration;

use redisext::serializer::{Json, Numeric, Str};
use redisext::testing::{RedisServer, ServerError};
use redisext::{Client, Counter, Map, ModelClass, ModelOptions};

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

    println!("\nKey commands (every model; scripts key/*)");
    show!(greeting.expire(Duration::from_secs(60))?);
    show!(greeting.ttl()?);
    show!(greeting.persist()?);
    show!(greeting.rename("greeting-renamed")?);
    show!(greeting.exists()?);
    let renamed = ModelClass::<Map<Str>>::new(&client).options(options.clone()).at("greeting-renamed")?;
    show!(renamed.get()?);
    show!(renamed.remove()?);

    println!("\nErrors are typed");
    show_error!(Counter::new(&client, ""));
    show_error!(Client::open("redis://user:secret@host:notaport/0"));
    let wrong_type = ModelClass::<Counter>::new(&client).options(options.clone()).at("profile")?;
    show_error!(wrong_type.incr(1));
    let not_json = ModelClass::<Map<Json<Profile>>>::new(&client).options(options.clone()).at("stock")?;
    show_error!(not_json.get());
    println!("\nCleaning up the demo's keys.");
    for key in [visitors.key(), stock.key(), profile.key()] {
        Map::<Str>::new(&client, key.as_bytes())?.remove()?;
    }
    Ok(())
}
