//! Counter, Map, the key commands and model classes against a real redis-server.

mod common;

use std::time::Duration;

use common::{assert_every_script_ran, client, server};
use redisext::serializer::{Json, Numeric, Raw, Str};
use redisext::{Counter, Error, Map, ModelClass, ModelOptions, Reply, Ttl};

#[test]
fn counter_counts_and_reads() {
    let server = server();
    let client = client(&server);
    let visitors = Counter::new(&client, "visitors").unwrap();
    assert_eq!(visitors.get().unwrap(), 0, "a missing counter reads as 0");
    assert_eq!(visitors.incr(1).unwrap(), 1);
    assert_eq!(visitors.incr(41).unwrap(), 42);
    assert_eq!(visitors.incr(-2).unwrap(), 40);
    assert_eq!(visitors.get().unwrap(), 40);
    // Stored as Python's Numeric serializer stores it: decimal ASCII.
    assert_eq!(server.command(&["GET", "visitors"]).unwrap(), Reply::Bulk(b"40".to_vec()));
    assert_every_script_ran(&server, "counter");
}

#[test]
fn counter_overflow_is_typed_and_changes_nothing() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "big").unwrap();
    counter.incr(i64::MAX).unwrap();
    let error = counter.incr(1).unwrap_err();
    assert!(matches!(error, Error::Overflow { .. }), "{error:?}");
    assert!(error.to_string().contains("overflow"), "{error}");
    assert_eq!(counter.get().unwrap(), i64::MAX);
    server.command(&["SET", "big", "many"]).unwrap();
    assert!(matches!(counter.incr(1).unwrap_err(), Error::NotAnInteger { .. }));
}

#[test]
fn map_operations() {
    let server = server();
    let client = client(&server);
    let map = Map::<Str>::new(&client, "greeting").unwrap();
    assert_eq!(map.get().unwrap(), None);
    assert!(!map.exists().unwrap());
    map.set("hello").unwrap();
    assert!(map.exists().unwrap());
    assert_eq!(map.get().unwrap().as_deref(), Some("hello"));
    assert!(map.remove().unwrap());
    assert!(!map.remove().unwrap(), "removing twice reports false");

    let number = Map::<Numeric>::new(&client, "number").unwrap();
    number.set(&10).unwrap();
    assert_eq!(number.incr(5).unwrap(), 15);
    assert_eq!(number.decr(20).unwrap(), -5);
    assert_eq!(number.get().unwrap(), Some(-5));
    assert_every_script_ran(&server, "map");
}

#[test]
fn binary_and_non_ascii_values_round_trip() {
    let server = server();
    let client = client(&server);
    let bytes: Vec<u8> = (0..=255).collect();
    let raw = Map::<Raw>::new(&client, b"bin\x00\xffkey").unwrap();
    raw.set(&bytes).unwrap();
    assert_eq!(raw.get().unwrap(), Some(bytes.clone()));
    assert_eq!(server.command_bytes(&[b"GET", b"bin\x00\xffkey"]).unwrap(), Reply::Bulk(bytes));

    let text = Map::<Str>::new(&client, "ключ").unwrap();
    text.set("日本語 ✓ \u{1F600}").unwrap();
    assert_eq!(text.get().unwrap().as_deref(), Some("日本語 ✓ \u{1F600}"));

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Note {
        title: String,
        score: f64,
    }
    let json = Map::<Json<Note>>::new(&client, "note").unwrap();
    let note = Note { title: "Zoë".into(), score: 1e16 };
    json.set(&note).unwrap();
    assert_eq!(json.get().unwrap(), Some(note));
    // Byte-identical to Python's json.dumps({"title": "Zoë", "score": 1e16}).
    assert_eq!(
        server.command(&["GET", "note"]).unwrap(),
        Reply::Bulk(br#"{"title": "Zo\u00eb", "score": 1e+16}"#.to_vec())
    );
}

#[test]
fn expire_ttl_persist() {
    let server = server();
    let client = client(&server);
    let map = Map::<Str>::new(&client, "session").unwrap();
    assert_eq!(map.ttl().unwrap(), Ttl::Missing);
    assert!(!map.expire(Duration::from_secs(10)).unwrap(), "no key, nothing to expire");
    map.set("x").unwrap();
    assert_eq!(map.ttl().unwrap(), Ttl::Persistent);

    let error = map.expire(None).unwrap_err();
    assert!(matches!(error, Error::NoDefaultExpiry { .. }), "{error:?}");
    let error = map.expire(Duration::from_micros(10)).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "{error:?}");

    assert!(map.expire(Duration::from_secs(100)).unwrap());
    match map.ttl().unwrap() {
        Ttl::Expires(left) => assert!(left > Duration::from_secs(90) && left <= Duration::from_secs(100), "{left:?}"),
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert!(map.persist().unwrap());
    assert!(!map.persist().unwrap());
    assert_eq!(map.ttl().unwrap(), Ttl::Persistent);

    // The model's default expiry (Python's EXPIRE attribute).
    let options = ModelOptions::new().expire(Duration::from_secs(50));
    let with_default = ModelClass::<Map<Str>>::new(&client).options(options).at("session").unwrap();
    assert!(with_default.expire(None).unwrap());
    assert!(matches!(with_default.ttl().unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(50)));

    // A renamed key keeps its expiry, as RENAME does.
    assert!(with_default.rename("session2").unwrap());
    let renamed = Map::<Str>::new(&client, "session2").unwrap();
    assert!(matches!(renamed.ttl().unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(50)));
    assert_eq!(map.ttl().unwrap(), Ttl::Missing);
    assert_every_script_ran(&server, "key");
}

#[test]
fn short_expiry_really_expires() {
    let server = server();
    let client = client(&server);
    let map = Map::<Str>::new(&client, "brief").unwrap();
    map.set("x").unwrap();
    map.expire(Duration::from_millis(30)).unwrap();
    // Poll with a bound instead of asserting on timing.
    server.wait_until(Duration::from_secs(5), |_| Ok(!map.exists().unwrap())).unwrap();
    assert_eq!(map.get().unwrap(), None);
}

#[test]
fn rename_moves_existing_keys_only() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "old").unwrap();
    assert!(!counter.rename("new").unwrap(), "missing keys are not renamed");
    counter.incr(7).unwrap();
    assert!(counter.rename("new").unwrap());
    assert_eq!(counter.get().unwrap(), 0, "the model keeps its old key");
    assert_eq!(Counter::new(&client, "new").unwrap().get().unwrap(), 7);
}

#[test]
fn fixed_and_per_instance_keys() {
    let server = server();
    let client = client(&server);
    let visitors = ModelClass::<Counter>::new(&client);
    let site_visitors = visitors.clone().fixed_key("site").unwrap();
    assert_eq!(site_visitors.instance().unwrap().incr(1).unwrap(), 1);
    assert_eq!(visitors.at("site").unwrap().get().unwrap(), 1);
    assert!(matches!(visitors.instance(), Err(Error::Config(_))), "no fixed key");
}

#[test]
fn namespaces_prefix_every_key() {
    let server = server();
    let client = client(&server);
    let options = ModelOptions::new().namespace("app:");
    let counter = ModelClass::<Counter>::new(&client).options(options).at("hits").unwrap();
    counter.incr(3).unwrap();
    assert_eq!(counter.key().as_bytes(), b"app:hits");
    assert_eq!(server.command(&["GET", "app:hits"]).unwrap(), Reply::Bulk(b"3".to_vec()));
    assert!(counter.rename("renamed").unwrap());
    assert_eq!(server.command(&["GET", "app:renamed"]).unwrap(), Reply::Bulk(b"3".to_vec()));
}

#[test]
fn every_script_loads_with_its_build_time_sha1() {
    let server = server();
    for script in redisext::script::all() {
        let reply = server.command(&["SCRIPT", "LOAD", script.source()]).unwrap();
        assert_eq!(reply, Reply::Bulk(script.sha1().as_bytes().to_vec()), "{}", script.name());
    }
}
