//! Bad input gets a clear typed error, before any round trip when it can, and
//! nothing stored is lost.

mod common;

use common::{client, server};
use redisext::serializer::{Json, Numeric, Pickle, Raw, Str};
use redisext::{Client, Counter, Error, Map, Reply};

#[test]
fn empty_keys_are_refused_before_any_round_trip() {
    // Port 1 has no server: had anything been sent, this would be a connection error.
    let client = Client::open("redis://127.0.0.1:1/0").unwrap();
    assert!(matches!(Counter::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(Map::<Str>::new(&client, b""), Err(Error::EmptyKey)));
}

#[test]
fn oversized_values_are_refused_before_any_round_trip() {
    let client = Client::open("redis://127.0.0.1:1/0").unwrap();
    let map = Map::<Raw>::new(&client, "big").unwrap();
    let value = vec![0u8; redisext::MAX_BULK_LEN + 1];
    let error = map.set(&value).unwrap_err();
    assert!(matches!(error, Error::TooLarge { what: "value", .. }), "{error:?}");
}

#[test]
fn wrong_redis_type_names_the_key_and_the_type_found() {
    let server = server();
    let client = client(&server);
    server.command(&["HSET", "profile", "name", "ada"]).unwrap();
    let error = Counter::new(&client, "profile").unwrap().incr(1).unwrap_err();
    let Error::WrongType { ref key, expected, ref found, script } = error else { panic!("{error:?}") };
    assert_eq!(
        (key.as_bytes(), expected, found.as_str(), script.name()),
        (&b"profile"[..], "string", "hash", "counter/incr")
    );
    let message = error.to_string();
    assert!(message.contains("\"profile\"") && message.contains("hash"), "{message}");

    // Reads report it too, and the hash is untouched.
    let error = Map::<Str>::new(&client, "profile").unwrap().get().unwrap_err();
    assert!(matches!(error, Error::WrongType { .. }), "{error:?}");
    assert_eq!(server.command(&["HGET", "profile", "name"]).unwrap(), Reply::Bulk(b"ada".to_vec()));
}

#[test]
fn undecodable_bytes_name_the_key_and_serializer_and_stay_stored() {
    let server = server();
    let client = client(&server);
    server.command_bytes(&[b"SET", b"blob", b"\xff\xfe not json"]).unwrap();

    let error = Map::<Json<Vec<u32>>>::new(&client, "blob").unwrap().get().unwrap_err();
    let Error::Decode { ref key, serializer, ref preview, .. } = error else { panic!("{error:?}") };
    assert_eq!((key.as_bytes(), serializer), (&b"blob"[..], "Json"));
    assert!(preview.contains("\\xff\\xfe not json"), "{preview}");
    assert!(error.to_string().contains("\"blob\""), "{error}");

    for error in [
        Map::<Str>::new(&client, "blob").unwrap().get().unwrap_err(),
        Map::<Numeric>::new(&client, "blob").unwrap().get().map(|_| ()).unwrap_err(),
        Map::<Pickle<String>>::new(&client, "blob").unwrap().get().map(|_| ()).unwrap_err(),
        Counter::new(&client, "blob").unwrap().get().map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    }
    // Failed decodes removed nothing.
    assert_eq!(server.command(&["EXISTS", "blob"]).unwrap(), Reply::Int(1));
}

#[test]
fn values_a_serializer_cannot_encode_are_refused_before_sending() {
    let client = Client::open("redis://127.0.0.1:1/0").unwrap();
    // JSON object keys must be strings.
    let map = Map::<Json<std::collections::BTreeMap<Vec<u8>, u8>>>::new(&client, "k").unwrap();
    let value = std::collections::BTreeMap::from([(vec![1u8], 1u8)]);
    let error = map.set(&value).unwrap_err();
    assert!(matches!(error, Error::Encode { serializer: "Json", .. }), "{error:?}");
}

#[test]
fn malformed_dsns_are_typed_errors() {
    for dsn in ["", "localhost:6379", "http://h", "redis://h:port", "redis://h/x", "redis://h/0?x=1", "unix://"] {
        let error = Client::open(dsn).unwrap_err();
        assert!(matches!(error, Error::Dsn(_)), "{dsn}: {error:?}");
    }
    let error = Client::builder().build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let error = Client::builder().master("redis://h").replica("nope").build().unwrap_err();
    assert!(matches!(error, Error::Dsn(_)), "{error:?}");
}

#[test]
fn passwords_never_appear_in_errors_or_debug() {
    let server = redisext::testing::RedisServer::start_with(&["--requirepass", "right-pass"]).unwrap();
    let port = server.port();

    let good = Client::open(&format!("redis://:right-pass@127.0.0.1:{port}/0")).unwrap();
    assert_eq!(Counter::new(&good, "c").unwrap().incr(1).unwrap(), 1, "the right password works");
    assert!(!format!("{good:?}").contains("right-pass"));

    let bad = Client::open(&format!("redis://default:wrong-pass@127.0.0.1:{port}/0")).unwrap();
    let error = Counter::new(&bad, "c").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    assert!(!error.may_have_applied(), "authentication fails before the command is sent");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("wrong-pass"), "{text}");
    }

    let builder = Client::builder().master("redis://u:s3cr3t@h:1/0").replica("redis://u:s3cr3t@h:2/0");
    assert!(!format!("{builder:?}").contains("s3cr3t"));
    let error = Client::open("redis://u:s3cr3t@h:notaport/0").unwrap_err();
    assert!(!error.to_string().contains("s3cr3t") && !format!("{error:?}").contains("s3cr3t"));
}

#[test]
fn unreachable_servers_are_connection_errors_that_were_not_sent() {
    let client = Client::open("redis://127.0.0.1:1/0").unwrap();
    let error = Counter::new(&client, "c").unwrap().incr(1).unwrap_err();
    let Error::Connection { delivery, ref node, .. } = error else { panic!("{error:?}") };
    assert_eq!(delivery, redisext::Delivery::NotSent);
    assert!(node.contains("127.0.0.1:1"), "{node}");
    assert!(!error.may_have_applied());
}

#[test]
fn a_sibling_key_of_the_wrong_type_is_named_as_such() {
    let server = server();
    let client = client(&server);
    // The lock's fencing counter lives at `{door}:fence`; make it a hash.
    server.command(&["HSET", "{door}:fence", "f", "v"]).unwrap();
    let error = redisext::Lock::new(&client, "door").unwrap().acquire(None).unwrap_err();
    let Error::WrongSiblingType { ref key, ref siblings, .. } = error else { panic!("{error:?}") };
    assert_eq!(key.as_bytes(), b"door");
    assert!(siblings.iter().any(|sibling| sibling.as_bytes() == b"{door}:fence"), "{error}");
    assert_eq!(server.command(&["EXISTS", "door"]).unwrap(), Reply::Int(0), "the lock was not taken");
}
