//! `rediss://` against a real TLS-enabled redis-server, with a private CA trusted
//! through `SSL_CERT_FILE` (read by rustls-native-certs): the certificate is
//! verified, and an untrusted one is refused. Skipped, saying so on standard
//! error, when the server binary (`REDIS_SERVER`) was built without TLS.
#![cfg(feature = "tls")]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use redisext::testing::{RedisServer, ServerError};
use redisext::{Client, Counter, Error};

/// Runs `openssl` with `args` in `dir`, failing the test with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make test certificates (scripts/setup.sh installs it)");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A CA, and a server certificate it signed for the name localhost only.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt"]
            .into_iter()
            .chain(["-days", "2", "-subj", "/CN=redisext test CA"])
            .collect::<Vec<_>>(),
    );
    openssl(
        dir,
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"]
            .into_iter()
            .chain(["-subj", "/CN=localhost"])
            .collect::<Vec<_>>(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]
            .into_iter()
            .chain(["-out", "server.crt", "-days", "2", "-extfile", "ext.cnf"])
            .collect::<Vec<_>>(),
    );
}

#[test]
fn rediss_verifies_the_server_certificate() {
    let dir = std::env::temp_dir().join(format!("redisext-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let started = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &path("server.crt"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let server = match started {
        Ok(server) => server,
        // The server's own words for a build without TLS (Redis >= 7.2, Valkey).
        Err(ServerError::DidNotStart { log, .. }) if log.contains("Failed finding TLS support") => {
            let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
            // Straight to the file descriptor: the test harness captures eprintln!.
            let _ = writeln!(std::io::stderr(), "SKIPPED rediss_verifies_the_server_certificate: {binary} has no TLS");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        Err(error) => panic!("start a TLS server: {error}"),
    };
    let url = format!("rediss://localhost:{tls_port}/0");

    // Not trusted yet: the handshake fails before anything is sent.
    let error = Counter::new(&Client::open(&url).unwrap(), "c").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { .. }) && !error.may_have_applied(), "{error:?}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");

    // SAFETY: this test binary has one test and no other thread reads the environment.
    unsafe { std::env::set_var("SSL_CERT_FILE", path("ca.crt")) };
    let client = Client::open(&url).unwrap();
    let counter = Counter::new(&client, "over-tls").unwrap();
    assert_eq!(counter.incr(5).unwrap(), 5);
    assert_eq!(counter.get().unwrap(), 5);
    // It really went over the TLS port: the plain port's server sees the same key.
    assert_eq!(server.command(&["GET", "over-tls"]).unwrap(), redisext::Reply::Bulk(b"5".to_vec()));
    // valkeys:// is rediss:// by another name.
    let valkeys = Client::open(&format!("valkeys://localhost:{tls_port}/0")).unwrap();
    assert_eq!(Counter::new(&valkeys, "over-tls").unwrap().incr(1).unwrap(), 6);

    // The name is checked too: the same server by IP address is not the name the
    // certificate was issued for.
    let error = Counter::new(&Client::open(&format!("rediss://127.0.0.1:{tls_port}/0")).unwrap(), "c")
        .unwrap()
        .incr(1)
        .unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    assert!(error.to_string().contains("not valid for name"), "{error}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
