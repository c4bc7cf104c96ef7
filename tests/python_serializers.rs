//! The serializers against CPython itself: a differential test through the public
//! `Serializer::encode`/`decode` on one side and Python redisext 2.0.2's own
//! `redisext.serializer.JSON`, `Numeric` and `Pickle` (with redis-py's encoder, as
//! a Python service stores values) on the other, in both directions:
//!
//! - Rust encodes → Python decodes and re-encodes: the value and the bytes compared;
//! - Python encodes → Rust decodes (a double's exact bits compared) and re-encodes:
//!   the bytes compared (JSON, Numeric), or Python reads Rust's pickle back (Pickle).
//!
//! Over 100,000 seeded random doubles (random bits, short decimals, exact ties,
//! subnormals) plus an edge-case corpus; random JSON documents; JSON texts that
//! Python accepts or refuses; Numeric's edge cases; Pickle's integers over the u64
//! range and beyond, tuples vs lists, sets vs frozensets, bytes vs str, nesting.
//! The Python side is tests/interop/serializer_oracle.py, one process for the
//! whole test; run with `--nocapture` to see the counts checked.
//!
//! The documented differences (docs/python.md) are asserted as such: Python reads
//! them, Rust refuses them with a clear error.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use redisext::serializer::{Json, Numeric, Pickle, PickleValue, PyHashableValue, PyValue, Serializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap};

// --- the oracle: one CPython process -------------------------------------------

struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// One answer of the oracle: its fields, or Python's error.
enum Answer {
    Ok(Vec<String>),
    Err(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok(fields) => write!(f, "ok {}", fields.join(" ")),
            Answer::Err(error) => write!(f, "Python error: {error}"),
        }
    }
}

impl Answer {
    fn fields(&self) -> Option<&[String]> {
        match self {
            Answer::Ok(fields) => Some(fields),
            Answer::Err(_) => None,
        }
    }
}

impl Oracle {
    fn start() -> Oracle {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/serializer_oracle.py");
        let python = common::python();
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Oracle { child, stdin, stdout }
    }

    /// Sends a batch and reads one answer per request (the requests are written
    /// from another thread, so that neither side blocks on a full pipe).
    fn ask(&mut self, requests: &[String]) -> Vec<Answer> {
        let (stdin, stdout) = (&mut self.stdin, &mut self.stdout);
        let answers = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                let mut out = std::io::BufWriter::new(stdin);
                for request in requests {
                    writeln!(out, "{request}")?;
                }
                writeln!(out, "flush")?;
                out.flush()
            });
            let mut answers = Vec::with_capacity(requests.len());
            let mut line = String::new();
            for _ in requests {
                line.clear();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut fields = line.split_whitespace().map(str::to_owned);
                answers.push(match fields.next().as_deref() {
                    Some("ok") => Answer::Ok(fields.collect()),
                    _ => Answer::Err(String::from_utf8_lossy(&unhex(&fields.next().unwrap_or_default())).into_owned()),
                });
            }
            let _ = writer.join();
            answers
        });
        if answers.len() < requests.len() {
            let _ = self.child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = self.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            panic!("the Python oracle stopped after {} of {} answers:\n{stderr}", answers.len(), requests.len());
        }
        answers
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Bytes shown for a failure message.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(200).collect()
}

/// What the test checked, and what it found wrong.
#[derive(Default)]
struct Report {
    counts: Vec<(&'static str, usize)>,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(failure());
        }
    }

    fn count(&mut self, what: &'static str, n: usize) {
        self.counts.push((what, n));
    }

    fn finish(self) {
        println!("values checked against CPython, per serializer and direction:");
        for (what, n) in &self.counts {
            println!("  {n:>8}  {what}");
        }
        assert!(
            self.failures.is_empty(),
            "{} disagreements with CPython; the first ones:\n{}",
            self.failures.len(),
            self.failures.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

// --- seeded random values --------------------------------------------------------

/// xorshift64*: reproducible values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

const RANDOM_BITS: usize = 50_000;
const SHORT_DECIMALS: usize = 30_000;
const TIE_CANDIDATES: usize = 15_000;
const SUBNORMALS: usize = 5_000;

/// The doubles checked: the edge-case corpus, then seeded random ones.
#[allow(clippy::excessive_precision)] // exact halfway values, written out
fn doubles() -> (Vec<f64>, usize) {
    let mut values = vec![
        0.0,
        -0.0,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // a signalling NaN with a payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.1,
        0.2,
        0.30000000000000004,
        1.0 / 3.0,
        2.0 / 3.0,
        0.5,
        1.5,
        2.5,
        100.0,
        1e15,
        1e16,
        1e17,
        9999999999999998.0,
        9007199254740992.0,
        9007199254740994.0,
        1e-4,
        1e-5,
        0.0001234,
        0.00001234,
        1e22,
        1e23,
        1e308,
        123456789.12345679,
        9.999999999999999e-05,
        1059438285926254.25,
        2f64.powi(-24),
        std::f64::consts::PI,
        std::f64::consts::E,
    ];
    for k in -1074..=1023 {
        values.push(2f64.powi(k));
        values.push(-(2f64.powi(k)));
    }
    for k in -323..=308 {
        values.push(format!("1e{k}").parse().expect("a double"));
    }
    let corpus = values.len();
    let mut rng = Rng(0x5eed_0fc0_ffee);
    for _ in 0..RANDOM_BITS {
        values.push(f64::from_bits(rng.next()));
    }
    // What services store: a few significant digits at some scale.
    for _ in 0..SHORT_DECIMALS {
        let digits = 1 + rng.below(17) as u32;
        let mantissa = rng.below(10u64.pow(digits));
        let exponent = rng.below(61) as i32 - 30;
        let sign = if rng.chance(2) { "-" } else { "" };
        values.push(format!("{sign}{mantissa}e{exponent}").parse().expect("a double"));
    }
    // m · 2^q with 17 or 18 exact digits: the doubles where the shortest digits can
    // tie, so where the rounding rule shows.
    while values.len() < corpus + RANDOM_BITS + SHORT_DECIMALS + TIE_CANDIDATES {
        let k = 1 + rng.below(25) as u32;
        let scale = 5u128.pow(k);
        let low = (10u128.pow(16) / scale).max(1);
        let high = (10u128.pow(18) / scale).min(1 << 53);
        if low >= high {
            continue;
        }
        let m = (low + u128::from(rng.next()) % (high - low)) | 1;
        if m < 1 << 53 {
            values.push(m as f64 * 2f64.powi(-(k as i32)));
        }
    }
    for _ in 0..SUBNORMALS {
        values.push(f64::from_bits(rng.next() & 0x800f_ffff_ffff_ffff));
    }
    (values, corpus)
}

/// The same double, NaNs being equal (Python has one NaN).
fn same_double(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn bits(text: &str) -> Option<f64> {
    u64::from_str_radix(text, 16).ok().map(f64::from_bits)
}

// --- JSON: doubles ---------------------------------------------------------------

fn json_doubles(oracle: &mut Oracle, report: &mut Report) {
    let (values, corpus) = doubles();
    let encoded: Vec<Vec<u8>> = values.iter().map(|x| Json::<f64>::encode(x).expect("encode")).collect();
    let requests: Vec<String> =
        values.iter().zip(&encoded).map(|(x, rust)| format!("jf {:016x} {}", x.to_bits(), hex(rust))).collect();
    let answers = oracle.ask(&requests);
    let (mut ties, mut ties_rust_alone_breaks_otherwise) = (0, 0);
    for ((&x, rust), answer) in values.iter().zip(&encoded).zip(&answers) {
        let fields = match answer {
            Answer::Ok(fields) if fields.len() == 4 => fields,
            other => {
                report.failures.push(format!("Python cannot read Rust's JSON {} for {x:?}: {other}", shown(rust)));
                continue;
            }
        };
        let (python, kind, decoded_bits, reencoded) = (unhex(&fields[0]), &fields[1], &fields[2], unhex(&fields[3]));
        // Rust encodes, Python decodes and re-encodes.
        let read_back = kind == "float" && bits(decoded_bits).is_some_and(|y| same_double(x, y));
        report.check(read_back && reencoded == *rust, || {
            format!(
                "Rust wrote {} for {x:?}; Python read {kind} {decoded_bits} and wrote {}",
                shown(rust),
                shown(&reencoded)
            )
        });
        // Python encodes, Rust decodes (exact bits) and re-encodes.
        let decoded = Json::<f64>::decode(&python);
        let rust_again = decoded.as_ref().ok().map(|y| Json::<f64>::encode(y).expect("encode"));
        report.check(
            decoded.as_ref().is_ok_and(|y| same_double(x, *y)) && rust_again.as_deref() == Some(&python),
            || format!("Python wrote {} for {x:?} ({:016x}); Rust read {decoded:?}", shown(&python), x.to_bits()),
        );
        report
            .check(python == *rust, || format!("{x:?}: Python writes {}, Rust writes {}", shown(&python), shown(rust)));
        if is_tie(x) {
            ties += 1;
            let digits = |text: &str| {
                text.split(['e', 'E']).next().unwrap_or("").replace(['-', '.'], "").trim_matches('0').to_owned()
            };
            let python_digits = digits(&String::from_utf8_lossy(&python));
            ties_rust_alone_breaks_otherwise += usize::from(digits(&format!("{x:e}")) != python_digits);
        }
    }
    report.count("Json<f64>: Rust encodes -> Python decodes (bits) and re-encodes (bytes)", values.len());
    report.count("Json<f64>: Python encodes -> Rust decodes (bits) and re-encodes (bytes)", values.len());
    println!(
        "(doubles: {corpus} edge cases, {RANDOM_BITS} random bit patterns, {SHORT_DECIMALS} short decimals, \
         {TIE_CANDIDATES} tie candidates, {SUBNORMALS} subnormals; {ties} exact ties between two shortest \
         candidates, {ties_rust_alone_breaks_otherwise} of them broken otherwise by Rust's own shortest digits)"
    );
}

/// Whether `x` lies exactly halfway between two decimals of its shortest length:
/// its exact digits (m · 5^-q for x = m · 2^q, m odd) are one more than the shortest.
fn is_tie(x: f64) -> bool {
    if !x.is_finite() || x == 0.0 {
        return false;
    }
    let bits = x.abs().to_bits();
    let biased = (bits >> 52) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (m, q) = if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
    let (m, q) = (m >> m.trailing_zeros(), q + m.trailing_zeros() as i32);
    if !(-25..0).contains(&q) {
        return false;
    }
    let exact = (u128::from(m) * 5u128.pow(q.unsigned_abs())).to_string();
    let shortest = format!("{:e}", x.abs());
    let shortest_len = shortest.split('e').next().unwrap_or("").replace('.', "").len();
    exact.len() == shortest_len + 1
}

// --- JSON: documents -------------------------------------------------------------

/// Any JSON value, keeping object keys in their order (as Python's dicts do) and
/// integers up to 128 bits: a Rust type as a user would write one.
#[derive(Debug, Clone)]
enum Dyn {
    Null,
    Bool(bool),
    Int(i128),
    /// Above i128::MAX.
    Big(u128),
    Float(f64),
    Str(String),
    List(Vec<Dyn>),
    Dict(Vec<(String, Dyn)>),
}

impl PartialEq for Dyn {
    fn eq(&self, other: &Dyn) -> bool {
        match (self, other) {
            (Dyn::Null, Dyn::Null) => true,
            (Dyn::Bool(a), Dyn::Bool(b)) => a == b,
            (Dyn::Int(a), Dyn::Int(b)) => a == b,
            (Dyn::Big(a), Dyn::Big(b)) => a == b,
            (Dyn::Float(a), Dyn::Float(b)) => same_double(*a, *b),
            (Dyn::Str(a), Dyn::Str(b)) => a == b,
            (Dyn::List(a), Dyn::List(b)) => a == b,
            (Dyn::Dict(a), Dyn::Dict(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Dyn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Dyn::Null => serializer.serialize_unit(),
            Dyn::Bool(b) => serializer.serialize_bool(*b),
            Dyn::Int(n) => match i64::try_from(*n) {
                Ok(n) => serializer.serialize_i64(n),
                Err(_) => serializer.serialize_i128(*n),
            },
            Dyn::Big(n) => serializer.serialize_u128(*n),
            Dyn::Float(f) => serializer.serialize_f64(*f),
            Dyn::Str(s) => serializer.serialize_str(s),
            Dyn::List(items) => serializer.collect_seq(items),
            Dyn::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dyn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dyn, D::Error> {
        struct DynVisitor;
        impl<'de> Visitor<'de> for DynVisitor {
            type Value = Dyn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Dyn, E> {
                Ok(Dyn::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Dyn, E> {
                Ok(Dyn::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Dyn, E> {
                Ok(Dyn::Int(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Dyn, E> {
                Ok(Dyn::Int(n.into()))
            }
            fn visit_i128<E>(self, n: i128) -> Result<Dyn, E> {
                Ok(Dyn::Int(n))
            }
            fn visit_u128<E>(self, n: u128) -> Result<Dyn, E> {
                Ok(i128::try_from(n).map_or(Dyn::Big(n), Dyn::Int))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Dyn, E> {
                Ok(Dyn::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Dyn, E> {
                Ok(Dyn::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dyn, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Dyn::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dyn, A::Error> {
                // As a Python dict: a repeated key keeps its place and takes the last value.
                let mut entries: Vec<(String, Dyn)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Dyn>()? {
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                Ok(Dyn::Dict(entries))
            }
        }
        deserializer.deserialize_any(DynVisitor)
    }
}

/// A Python expression for the same value (for the oracle's eval).
fn python_literal(value: &Dyn) -> String {
    match value {
        Dyn::Null => "None".to_owned(),
        Dyn::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Dyn::Int(n) => format!("({n})"),
        Dyn::Big(n) => n.to_string(),
        Dyn::Float(f) => format!("double('{:016x}')", f.to_bits()),
        Dyn::Str(s) => format!("utf8('{}')", hex(s.as_bytes())),
        Dyn::List(items) => format!("[{}]", items.iter().map(python_literal).collect::<Vec<_>>().join(", ")),
        Dyn::Dict(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("utf8('{}'): {}", hex(k.as_bytes()), python_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn random_char(rng: &mut Rng) -> char {
    let code = match rng.below(8) {
        0 => rng.below(0x20) as u32, // control characters
        1 => *[0x22, 0x5c, 0x2f, 0x7f, 0x2028, 0x2029, 0xfeff].get(rng.below(7) as usize).unwrap_or(&0x22),
        2 => 0x80 + rng.below(0x780) as u32,       // Latin, Greek, Cyrillic…
        3 => 0x800 + rng.below(0xd000) as u32,     // the rest of the BMP below the surrogates
        4 => 0x10000 + rng.below(0x100000) as u32, // beyond the BMP
        _ => 0x20 + rng.below(0x5f) as u32,        // printable ASCII
    };
    char::from_u32(code).unwrap_or('?')
}

fn random_string(rng: &mut Rng) -> String {
    (0..rng.below(12)).map(|_| random_char(rng)).collect()
}

fn random_dyn(rng: &mut Rng, doubles: &[f64], depth: u32) -> Dyn {
    let leaf = depth == 0 || rng.below(3) > 0;
    match if leaf { rng.below(7) } else { 7 + rng.below(2) } {
        0 => Dyn::Null,
        1 => Dyn::Bool(rng.chance(2)),
        2 => Dyn::Int(match rng.below(4) {
            0 => rng.below(1000) as i128 - 500,
            1 => rng.next() as i64 as i128,
            2 => (i128::from(rng.next()) << 64 | i128::from(rng.next())) >> rng.below(64),
            _ => *[i128::MIN, i128::MAX, i64::MIN.into(), i64::MAX.into(), u64::MAX.into(), 0]
                .get(rng.below(6) as usize)
                .unwrap_or(&0),
        }),
        3 => Dyn::Big(u128::MAX - u128::from(rng.next())),
        4 | 5 => Dyn::Float(doubles[rng.below(doubles.len() as u64) as usize]),
        6 => Dyn::Str(random_string(rng)),
        7 => Dyn::List((0..rng.below(5)).map(|_| random_dyn(rng, doubles, depth - 1)).collect()),
        _ => {
            let mut entries: Vec<(String, Dyn)> = Vec::new();
            for _ in 0..rng.below(5) {
                let key = random_string(rng);
                if !entries.iter().any(|(k, _)| *k == key) {
                    entries.push((key, random_dyn(rng, doubles, depth - 1)));
                }
            }
            Dyn::Dict(entries)
        }
    }
}

/// A map with float keys, which Python writes as their repr (`"NaN"`, `"1e+16"`).
#[derive(Debug, PartialEq)]
struct FloatKeys(Vec<(f64, i64)>);

impl Serialize for FloatKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FloatKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FloatKeys, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = FloatKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with float keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FloatKeys, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(FloatKeys(entries))
            }
        }
        deserializer.deserialize_map(KeysVisitor)
    }
}

fn same_keys(a: &FloatKeys, b: &FloatKeys) -> bool {
    a.0.len() == b.0.len() && a.0.iter().zip(&b.0).all(|((ka, va), (kb, vb))| same_double(*ka, *kb) && va == vb)
}

const DOCUMENTS: usize = 4_000;

fn json_documents(oracle: &mut Oracle, report: &mut Report) {
    let (doubles, _) = doubles();
    let mut rng = Rng(0xd0c_5eed);
    let documents: Vec<Dyn> = (0..DOCUMENTS).map(|_| random_dyn(&mut rng, &doubles, 4)).collect();
    let encoded: Vec<Vec<u8>> = documents.iter().map(|d| Json::<Dyn>::encode(d).expect("encode")).collect();
    // Float keys: distinct ones in a map (Python merges equal keys: 0.0 and -0.0, and
    // the "NaN" keys it reads back).
    let key_maps: Vec<FloatKeys> = doubles
        .chunks(10)
        .step_by(20)
        .map(|chunk| {
            let mut keys: Vec<f64> = Vec::new();
            for &key in chunk {
                if !keys.iter().any(|k| k == &key || (k.is_nan() && key.is_nan())) {
                    keys.push(key);
                }
            }
            FloatKeys(keys.into_iter().zip(0..).collect())
        })
        .collect();
    let key_bytes: Vec<Vec<u8>> = key_maps.iter().map(|m| Json::<FloatKeys>::encode(m).expect("encode")).collect();

    let mut requests: Vec<String> =
        encoded.iter().chain(&key_bytes).map(|bytes| format!("jd {}", hex(bytes))).collect();
    requests.extend(documents.iter().map(|d| format!("jp {}", hex(python_literal(d).as_bytes()))));
    let key_literal = |m: &FloatKeys| {
        let entries: Vec<String> = m.0.iter().map(|(k, v)| format!("double('{:016x}'): {v}", k.to_bits())).collect();
        format!("{{{}}}", entries.join(", "))
    };
    requests.extend(key_maps.iter().map(|m| format!("jp {}", hex(key_literal(m).as_bytes()))));
    let answers = oracle.ask(&requests);
    let (rust_side, python_side) = answers.split_at(encoded.len() + key_bytes.len());

    // Rust encodes -> Python decodes and re-encodes the same bytes.
    for (bytes, answer) in encoded.iter().chain(&key_bytes).zip(rust_side) {
        let python = answer.fields().map(|f| unhex(&f[0]));
        report.check(python.as_ref() == Some(bytes), || {
            format!("Rust wrote {}; Python re-encoded it as {:?} ({answer})", shown(bytes), python.map(|p| shown(&p)))
        });
    }
    // Python encodes -> Rust decodes the same value and re-encodes the same bytes.
    let (document_answers, key_answers) = python_side.split_at(documents.len());
    for (document, answer) in documents.iter().zip(document_answers) {
        let Some(python) = answer.fields().map(|f| unhex(&f[0])) else {
            report.failures.push(format!("Python cannot encode {}: {answer}", python_literal(document)));
            continue;
        };
        let decoded = Json::<Dyn>::decode(&python);
        let again = decoded.as_ref().ok().map(|d| Json::<Dyn>::encode(d).expect("encode"));
        report.check(decoded.as_ref() == Ok(document) && again.as_deref() == Some(&python), || {
            format!("Python wrote {}; Rust read {decoded:?}", shown(&python))
        });
    }
    for (keys, answer) in key_maps.iter().zip(key_answers) {
        let Some(python) = answer.fields().map(|f| unhex(&f[0])) else { continue };
        let decoded = Json::<FloatKeys>::decode(&python);
        report.check(decoded.as_ref().is_ok_and(|d| same_keys(d, keys)), || {
            format!("Python wrote {}; Rust read {decoded:?}", shown(&python))
        });
    }
    report.count(
        "Json<document>: Rust encodes -> Python decodes and re-encodes (bytes)",
        encoded.len() + key_bytes.len(),
    );
    report.count(
        "Json<document>: Python encodes -> Rust decodes (values) and re-encodes (bytes)",
        documents.len() + key_maps.len(),
    );
}

/// Python values whose JSON Rust reads into the types named: what Rust must
/// give, or the error it must give (a typed error, never a changed value).
fn json_typed(oracle: &mut Oracle, report: &mut Report) {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Ordered {
        zebra: u8,
        apple: Vec<Option<f64>>,
    }
    type Check = fn(&[u8]) -> Result<(), String>;
    let cases: Vec<(&str, Check)> = vec![
        ("2**64", |b| match (Json::<u128>::decode(b), Json::<f64>::decode(b), Json::<serde_json::Value>::decode(b)) {
            (Ok(n), Ok(f), Err(e)) if n == 1 << 64 && f == 2f64.powi(64) && e.contains("more than 64 bits") => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("2**53 + 1", |b| match (Json::<i64>::decode(b), Json::<f64>::decode(b)) {
            (Ok(9007199254740993), Err(e)) if e.contains("no exact floating-point value") => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("-2**127", |b| match Json::<i128>::decode(b) {
            Ok(i128::MIN) => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("2**128", |b| match Json::<Dyn>::decode(b) {
            Err(e) if e.contains("beyond 128 bits") => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("float('nan')", |b| match (Json::<Option<f64>>::decode(b), Json::<serde_json::Value>::decode(b)) {
            (Ok(Some(f)), Err(e)) if f.is_nan() && e.contains("finite numbers only") => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("[float('inf'), -float('inf')]", |b| match Json::<Vec<f32>>::decode(b) {
            Ok(v) if v == [f32::INFINITY, f32::NEG_INFINITY] => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("{'zebra': 1, 'apple': [None, 0.1]}", |b| {
            let value = Json::<Ordered>::decode(b)?;
            let again = Json::<Ordered>::encode(&value)?;
            if value == (Ordered { zebra: 1, apple: vec![None, Some(0.1)] }) && again == b {
                Ok(())
            } else {
                Err(format!("{value:?}, written back as {}", shown(&again)))
            }
        }),
        ("{1: 'a', 2.5: 'b', True: 'c', None: 'd'}", |b| {
            // Python: {"1": "c", "2.5": "b", "null": "d"} (True == 1 merges the keys).
            match Json::<std::collections::BTreeMap<String, String>>::decode(b) {
                Ok(map) if map.len() == 3 && map["1"] == "c" && map["null"] == "d" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }),
        ("'\\U0001F600\\x00\\x7f\\u2028'", |b| match Json::<String>::decode(b) {
            Ok(s) if s == "\u{1F600}\0\u{7f}\u{2028}" && Json::<String>::encode(&s).as_deref() == Ok(b) => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        ("''.join(chr(c) for c in range(0x800))", |b| match Json::<String>::decode(b) {
            Ok(s) if s.chars().count() == 0x800 && Json::<String>::encode(&s).as_deref() == Ok(b) => Ok(()),
            other => Err(format!("{other:?}")),
        }),
    ];
    let requests: Vec<String> = cases.iter().map(|(expr, _)| format!("jp {}", hex(expr.as_bytes()))).collect();
    let answers = oracle.ask(&requests);
    for ((expr, check), answer) in cases.iter().zip(&answers) {
        let Some(python) = answer.fields().map(|f| unhex(&f[0])) else {
            report.failures.push(format!("Python cannot encode {expr}: {answer}"));
            continue;
        };
        if let Err(why) = check(&python) {
            report.failures.push(format!("{expr} (Python wrote {}): {why}", shown(&python)));
        }
    }
    report.count("Json<typed targets>: Python encodes -> Rust decodes (value or typed error)", cases.len());
}

// --- JSON: texts Python accepts or refuses -----------------------------------------

/// Where Rust's reader knowingly differs from Python's (docs/python.md): Python
/// reads these, Rust refuses them with an error saying why.
const JSON_DIFFERENCES: &[(&str, &str)] = &[
    ("\"\\ud800\"", "lone surrogate"),
    ("\"\\udc00x\"", "lone surrogate"),
    ("\"\\ud83d\\u0041\"", "lone surrogate"),
    ("123456789012345678901234567890123456789012345678901234567890", "beyond 128 bits"),
    ("-340282366920938463463374607431768211457", "beyond 128 bits"),
];

fn json_texts(oracle: &mut Oracle, report: &mut Report) {
    let mut texts: Vec<Vec<u8>> = [
        // Accepted by Python.
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "1.5",
        "-0.0",
        "0.0",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "1.5e300",
        "1e400",
        "-1e400",
        "1e-400",
        "NaN",
        "Infinity",
        "-Infinity",
        " \t\n\r[1 , 2 ]\r\n",
        "[]",
        "{}",
        "[[]]",
        "{\"a\": {}}",
        "\"\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\uD83D\\uDE00\"",
        "\"é😀\"",
        "\"\\/\"",
        "\"\\b\\f\\n\\r\\t\\\"\\\\\"",
        "\"\u{7f}\"",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "170141183460469231731687303715884105727",
        "170141183460469231731687303715884105728",
        "340282366920938463463374607431768211455",
        "-170141183460469231731687303715884105728",
        "{\"b\": 1, \"a\": 2}",
        "{\"a\":1,\"a\":2,\"b\":3}",
        "1.0",
        "100",
        "0.1e1",
        "0.30000000000000004441",
        "123456789012345678901234567890.5",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "[1,[2,[3,{\"x\":[null]}]]]",
        "{\"\": \"\"}",
        "[NaN,Infinity,-Infinity]",
        "-0e0",
        "0E-0",
        // Refused by Python.
        "",
        " ",
        "01",
        "-01",
        "00",
        "1.",
        ".5",
        "+1",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{a:1}",
        "{'a':1}",
        "['a']",
        "nan",
        "inf",
        "-NaN",
        "NAN",
        "infinity",
        "-inf",
        "\"\u{1}\"",
        "\"\t\"",
        "\"\\x\"",
        "\"\\u004\"",
        "\"\\U0041\"",
        "\"\\u00g0\"",
        "1 2",
        "[1] x",
        "\u{c}1",
        "\u{a0}1",
        "\u{feff}1",
        "True",
        "None",
        "[",
        "]",
        "{",
        "}",
        "\"abc",
        "1e",
        "1e+",
        "1.5e",
        "-",
        "--1",
        "0x10",
        "1_000",
        "[1]]",
        "{\"a\":1}}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "\"a\" \"b\"",
        "tru",
        "nul",
        "falsey",
        "1.0.0",
        "-Infinityx",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    texts.push(b"\"\xff\"".to_vec()); // not UTF-8
    texts.push(b"\"\xed\xa0\x80\"".to_vec()); // a UTF-8-encoded surrogate: not UTF-8 either
    texts.push("1".repeat(4301).into_bytes()); // beyond Python's int digit limit: refused by both
    for depth in [127, 128, 129, 990] {
        texts.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
    }
    texts.extend(JSON_DIFFERENCES.iter().map(|(t, _)| t.as_bytes().to_vec()));

    let requests: Vec<String> = texts.iter().map(|t| format!("jd {}", hex(t))).collect();
    let answers = oracle.ask(&requests);
    let (mut accepted, mut refused, mut differences) = (0, 0, 0);
    for (text, answer) in texts.iter().zip(&answers) {
        let rust = Json::<Dyn>::decode(text);
        let difference = JSON_DIFFERENCES.iter().find(|(t, _)| t.as_bytes() == text.as_slice()).map(|(_, why)| *why);
        let deeper_than_rust_reads = text.starts_with(b"[[") && text.len() > 2 * 128;
        match (answer, rust) {
            (Answer::Ok(fields), Ok(value)) if difference.is_none() && !deeper_than_rust_reads => {
                let again = Json::<Dyn>::encode(&value).expect("encode");
                report.check(again == unhex(&fields[0]), || {
                    format!("{}: Python re-encodes {}, Rust {}", shown(text), shown(&unhex(&fields[0])), shown(&again))
                });
                accepted += 1;
            }
            (Answer::Err(_), Err(_)) => refused += 1,
            (Answer::Ok(_), Err(error)) if deeper_than_rust_reads && error.contains("nested deeper than 128") => {
                differences += 1
            }
            (Answer::Ok(_), Err(error)) if difference.is_some_and(|why| error.contains(why)) => differences += 1,
            (python, rust) => report.failures.push(format!("{}: Python {python}, Rust {rust:?}", shown(text))),
        }
    }
    report.count("Json texts: accepted by both, Python's and Rust's re-encodings compared", accepted);
    report.count("Json texts: refused by both", refused);
    report.count("Json texts: read by Python, refused by Rust with the documented error", differences);
}

// --- Numeric -------------------------------------------------------------------------

fn numeric(oracle: &mut Oracle, report: &mut Report) {
    // What Python's int() accepts: every byte alone, before and after a digit; every
    // string of up to 4 of "10_+- "; Unicode spaces and digits; the range's edges.
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for byte in 0..=255u8 {
        inputs.extend([vec![byte], vec![byte, b'5'], vec![b'5', byte], vec![byte, b'5', byte]]);
    }
    let alphabet = b"10_+- ";
    let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..4 {
        strings = strings
            .iter()
            .flat_map(|s| alphabet.iter().map(move |c| [s.as_slice(), &[*c]].concat()))
            .chain(strings.iter().cloned())
            .collect();
        strings.sort();
        strings.dedup();
    }
    inputs.extend(strings);
    for ch in [
        '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2009}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}',
        '\u{205f}', '\u{3000}', '\u{feff}', '\u{663}', '\u{ff13}',
    ] {
        inputs.push(format!("{ch}5").into_bytes());
        inputs.push(format!("5{ch}").into_bytes());
        inputs.push(ch.to_string().into_bytes());
    }
    for text in [
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "+9223372036854775807",
        "0000000000000000000000000001",
        "-0",
        "+0",
        "-_1",
        "-9_223_372_036_854_775_808",
        "9_223_372_036_854_775_808",
        " \t\n\x0b\x0c\r-42\r\x0c\x0b\n\t ",
        "1e3",
        "0x10",
        "0b1",
        "0o7",
        "1.0",
        "١٢٣",
    ] {
        inputs.push(text.as_bytes().to_vec());
    }
    inputs.push("1".repeat(5000).into_bytes());
    let mut rng = Rng(0x1e7_5eed);
    let values: Vec<i64> = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]
        .into_iter()
        .chain((0..10_000).map(|i| (rng.next() as i64) >> (i % 64)))
        .collect();

    let mut requests: Vec<String> = inputs.iter().map(|b| format!("nd {}", hex(b))).collect();
    requests.extend(values.iter().map(|v| format!("ne {v}")));
    requests.extend(values.iter().map(|v| format!("nd {}", hex(&Numeric::encode(v).expect("encode")))));
    let answers = oracle.ask(&requests);
    let (decode_answers, rest) = answers.split_at(inputs.len());
    let (encode_answers, read_back) = rest.split_at(values.len());

    let mut agreed = 0;
    for (input, answer) in inputs.iter().zip(decode_answers) {
        let rust = Numeric::decode(input);
        let python = answer.fields().map(|f| f[0].clone());
        let expected = python.as_ref().map(|n| n.parse::<i64>());
        let ok = match (&expected, &rust) {
            (Some(Ok(n)), Ok(m)) => n == m,
            (Some(Err(_)), Err(e)) => e.contains("out of the 64-bit range"), // Python's ints are unbounded
            (None, Err(_)) => true,
            _ => false,
        };
        agreed += usize::from(ok);
        report.check(ok, || format!("Numeric {input:?}: Python int() gives {python:?}, Rust {rust:?}"));
    }
    for (value, answer) in values.iter().zip(encode_answers) {
        let python = answer.fields().map(|f| unhex(&f[0]));
        let rust = Numeric::encode(value).expect("encode");
        let decoded = python.as_ref().map(|bytes| Numeric::decode(bytes));
        report.check(python.as_ref() == Some(&rust) && decoded == Some(Ok(*value)), || {
            format!("Numeric {value}: Python stores {python:?}, Rust {rust:?}")
        });
    }
    for (value, answer) in values.iter().zip(read_back) {
        let python = answer.fields().map(|f| f[0].clone());
        report.check(python == Some(value.to_string()), || {
            format!("Numeric {value}: Python read Rust's bytes as {python:?}")
        });
    }
    report
        .count("Numeric: the same bytes decoded by Python's int() and by Rust (agreeing on value or refusal)", agreed);
    report.count("Numeric: Python encodes -> Rust encodes the same bytes and decodes the value", values.len());
    report.count("Numeric: Rust encodes -> Python decodes the value", values.len());
}

// --- Pickle --------------------------------------------------------------------------

/// The oracle's typed description of a Python value (its `canon`).
fn canon(value: &PyValue) -> String {
    fn hashable(value: &PyHashableValue) -> String {
        canon(&value.clone().into_value())
    }
    fn items<'a>(kind: &str, values: impl Iterator<Item = &'a PyValue>) -> String {
        format!("{kind}[{}]", values.map(canon).collect::<Vec<_>>().join(","))
    }
    fn sorted(kind: &str, mut parts: Vec<String>) -> String {
        parts.sort();
        format!("{kind}{{{}}}", parts.join(","))
    }
    match value {
        PyValue::None => "NoneType:None".to_owned(),
        PyValue::Bool(b) => format!("bool:{}", if *b { "True" } else { "False" }),
        PyValue::I64(n) => format!("int:{n}"),
        PyValue::Int(n) => format!("int:{n}"),
        PyValue::F64(f) => canon_float(*f),
        PyValue::Bytes(b) => format!("bytes:{}", hex(b)),
        PyValue::String(s) => format!("str:{}", hex(s.as_bytes())),
        PyValue::List(values) => items("list", values.iter()),
        PyValue::Tuple(values) => items("tuple", values.iter()),
        PyValue::Set(values) => sorted("set", values.iter().map(hashable).collect()),
        PyValue::FrozenSet(values) => sorted("frozenset", values.iter().map(hashable).collect()),
        PyValue::Dict(entries) => {
            sorted("dict", entries.iter().map(|(k, v)| format!("{}:{}", hashable(k), canon(v))).collect())
        }
    }
}

fn canon_float(f: f64) -> String {
    if f.is_nan() { "float:nan".to_owned() } else { format!("float:{:016x}", f.to_bits()) }
}

/// Python expressions pickled by Python and read by Rust.
const PICKLED_BY_PYTHON: &[&str] = &[
    // ints over the u64 range and beyond
    "0",
    "1",
    "-1",
    "2**31 - 1",
    "2**31",
    "-2**31 - 1",
    "2**32",
    "2**63 - 1",
    "2**63",
    "2**64 - 1",
    "2**64",
    "-2**63",
    "-2**63 - 1",
    "2**127 - 1",
    "2**127",
    "2**128 - 1",
    "2**128",
    "-2**127",
    "-2**127 - 1",
    "2**200",
    "-2**200",
    "10**100",
    // floats, str, bytes
    "0.0",
    "-0.0",
    "float('nan')",
    "float('inf')",
    "-float('inf')",
    "5e-324",
    "0.1",
    "1e16",
    "''",
    "'a'",
    "'é'",
    "'\\U0001F600'",
    "'\\x00\\x7f'",
    "'x' * 100000",
    "b''",
    "b'\\x00\\xff'",
    "b'x' * 300",
    // tuples vs lists, sets vs frozensets
    "()",
    "(1,)",
    "(1, 2)",
    "(1, 2, 3)",
    "(1, 2, 3, 4)",
    "[]",
    "[1]",
    "[(1, [2, (3,)])]",
    "[(), [], (), []]",
    "set()",
    "{1}",
    "{1, 'a', b'b', (1, 2)}",
    "frozenset()",
    "frozenset({1, 'a', b'b', (1, 2)})",
    "{frozenset({1}), frozenset()}",
    "[{1, 2}, frozenset({1, 2})]",
    // dicts, None, bools, nesting, batching, shared references
    "{}",
    "{'a': 1}",
    "{'b': 1, 'a': 2}",
    "{1: 'a', (1, 2): [3], None: True, 2.5: b'x', frozenset({1}): ()}",
    "None",
    "True",
    "False",
    "[None, True, False]",
    "[[[[[[[[[[1]]]]]]]]]]",
    "list(range(2500))",
    "{str(i): i for i in range(1500)}",
    "set(range(1500))",
    "(lambda x: [x, x, (x,)])([1, 2])",
    "{'name': 'Zoë', 'tags': ('a', 'b'), 'score': 0.1, 'raw': b'\\x01', 'big': 2**70}",
];

/// Where Rust's reading knowingly differs (docs/python.md): Python pickles these
/// (with the protocols named; all when none), Rust's decode refuses them with an
/// error saying why.
const PICKLE_DIFFERENCES: &[(&str, &[&str], &str)] = &[
    ("decimal.Decimal('1.5')", &[], "Python class or function"),
    ("collections.OrderedDict([('a', 1)])", &[], "Python class or function"),
    ("(lambda l: (l.append(l), l)[1])([])", &[], "recursive"),
    // Protocols 0 to 2 have no bytes opcode: Python writes b'' as a call of bytes().
    ("b''", &["0", "1", "2"], "Python class or function"),
];

/// Python values Rust reads as another Python type (docs/python.md), with the
/// type it reads: `bytearray` has no Rust counterpart but bytes.
const PICKLE_CONVERSIONS: &[(&str, &str)] = &[("bytearray(b'xy')", "bytes:7879")];

/// The documented difference for `expr` pickled with `protocol`, if any: what the
/// error must say.
fn pickle_difference(expr: &str, protocol: &str) -> Option<&'static str> {
    PICKLE_DIFFERENCES
        .iter()
        .find(|(e, protocols, _)| *e == expr && (protocols.is_empty() || protocols.contains(&protocol)))
        .map(|(_, _, why)| *why)
}

/// A typed read of a Python int: the value when the type holds it, else an error
/// naming the type.
fn check_int<T>(canon: &str, bytes: &[u8]) -> Result<(), String>
where
    T: serde::de::DeserializeOwned + Serialize + Send + PartialEq + std::fmt::Debug + std::str::FromStr + 'static,
{
    let Some(text) = canon.strip_prefix("int:") else { return Ok(()) };
    let decoded = Pickle::<T>::decode(bytes);
    match (text.parse::<T>(), decoded) {
        (Ok(n), Ok(m)) if n == m => Ok(()),
        (Err(_), Err(e)) if e.contains("expected") || e.contains("beyond 128 bits") => Ok(()),
        (want, got) => Err(format!("{}: {text} read as {got:?}, want {}", Pickle::<T>::name(), want.is_ok())),
    }
}

fn pickle(oracle: &mut Oracle, report: &mut Report) {
    let (doubles, _) = doubles();
    let doubles: Vec<f64> = doubles.into_iter().step_by(10).collect();
    let mut rng = Rng(0x91c_5eed);
    let unsigned: Vec<u64> = [0, 1, (1 << 31) - 1, 1 << 31, 1 << 32, i64::MAX as u64, 1 << 63, u64::MAX - 1, u64::MAX]
        .into_iter()
        .chain((0..2_000).map(|i| rng.next() >> (i % 64)))
        .collect();
    let signed: Vec<i64> = [i64::MIN, -(1 << 31) - 1, -(1 << 31), -1, 0, i64::MAX]
        .into_iter()
        .chain((0..2_000).map(|i| (rng.next() as i64) >> (i % 64)))
        .collect();

    // Rust encodes (serde types and PyValues) -> Python unpickles: the canon it must see.
    let mut rust_written: Vec<(Vec<u8>, String)> = Vec::new();
    for n in &unsigned {
        rust_written.push((Pickle::<u64>::encode(n).expect("encode"), format!("int:{n}")));
    }
    for n in &signed {
        rust_written.push((Pickle::<i64>::encode(n).expect("encode"), format!("int:{n}")));
    }
    let text = "Zoë 😀 \u{0}\u{7f}".to_owned();
    rust_written.push((Pickle::<String>::encode(&text).expect("encode"), format!("str:{}", hex(text.as_bytes()))));
    rust_written
        .push((Pickle::<(i64, bool)>::encode(&(1, true)).expect("encode"), "tuple[int:1,bool:True]".to_owned()));
    rust_written.push((
        Pickle::<Vec<Option<i64>>>::encode(&vec![None, Some(2)]).expect("encode"),
        "list[NoneType:None,int:2]".to_owned(),
    ));
    let map = std::collections::BTreeMap::from([("b".to_owned(), 1u64 << 63), ("a".to_owned(), 0)]);
    rust_written.push((
        Pickle::<std::collections::BTreeMap<String, u64>>::encode(&map).expect("encode"),
        format!("dict{{str:61:int:0,str:62:int:{}}}", 1u64 << 63),
    ));
    let key = |v: PyValue| v.into_hashable().expect("hashable");
    let values = [
        PyValue::Tuple(vec![
            PyValue::I64(1),
            PyValue::List(vec![PyValue::Bytes(b"raw".to_vec()), PyValue::String("text".into())]),
        ]),
        PyValue::Tuple(vec![]),
        PyValue::Tuple(vec![PyValue::None]),
        PyValue::Set(
            [
                key(PyValue::I64(1)),
                key(PyValue::String("a".into())),
                key(PyValue::Tuple(vec![PyValue::Bytes(vec![0])])),
            ]
            .into(),
        ),
        PyValue::FrozenSet([key(PyValue::I64(1)), key(PyValue::Bytes(b"b".to_vec()))].into()),
        PyValue::Set(Default::default()),
        PyValue::FrozenSet(Default::default()),
        PyValue::Dict(
            [
                (key(PyValue::Tuple(vec![PyValue::I64(1), PyValue::I64(2)])), PyValue::List(vec![])),
                (key(PyValue::FrozenSet([key(PyValue::I64(3))].into())), PyValue::F64(-0.0)),
                (key(PyValue::None), PyValue::Bool(false)),
            ]
            .into(),
        ),
        PyValue::List((0..2500).map(PyValue::I64).collect()),
    ];
    for value in &values {
        rust_written.push((PickleValue::encode(value).expect("encode"), canon(value)));
    }
    let mut requests: Vec<String> = rust_written.iter().map(|(bytes, _)| format!("pl {}", hex(bytes))).collect();
    // Doubles both ways through Pickle<f64>.
    requests.extend(
        doubles.iter().map(|x| format!("pf {:016x} {}", x.to_bits(), hex(&Pickle::<f64>::encode(x).expect("encode")))),
    );
    // Python pickles, with each protocol and with redisext's own Pickle.encode.
    let protocols = ["0", "1", "2", "3", "4", "5", "redisext"];
    let pickled: Vec<(&str, &str)> = PICKLED_BY_PYTHON
        .iter()
        .chain(PICKLE_DIFFERENCES.iter().map(|(expr, _, _)| expr).filter(|e| !PICKLED_BY_PYTHON.contains(e)))
        .chain(PICKLE_CONVERSIONS.iter().map(|(expr, _)| expr))
        .flat_map(|expr| protocols.iter().map(move |p| (*expr, *p)))
        .collect();
    requests.extend(pickled.iter().map(|(expr, protocol)| format!("pp {} {protocol}", hex(expr.as_bytes()))));
    let answers = oracle.ask(&requests);
    let (written_answers, rest) = answers.split_at(rust_written.len());
    let (double_answers, python_answers) = rest.split_at(doubles.len());

    for ((_, want), answer) in rust_written.iter().zip(written_answers) {
        let got = answer.fields().map(|f| f[0].clone());
        report.check(got.as_deref() == Some(want), || format!("Python unpickled Rust's {want} as {got:?} ({answer})"));
    }
    for (x, answer) in doubles.iter().zip(double_answers) {
        let Some(fields) = answer.fields() else {
            report.failures.push(format!("Pickle<f64> {x:?}: {answer}"));
            continue;
        };
        report.check(fields[1] == canon_float(*x), || format!("Python unpickled Rust's {x:?} as {}", fields[1]));
        let decoded = Pickle::<f64>::decode(&unhex(&fields[0]));
        report.check(decoded.as_ref().is_ok_and(|y| same_double(*x, *y)), || {
            format!("Rust unpickled Python's {x:?} as {decoded:?}")
        });
    }

    // Python pickles -> Rust reads the same value (PyValue, and typed targets), and
    // writes it back for Python to read (the second round below).
    let mut rust_rewritten: Vec<(String, Vec<u8>)> = Vec::new();
    let (mut read, mut differences) = (0, 0);
    for ((expr, protocol), answer) in pickled.iter().zip(python_answers) {
        let Some(fields) = answer.fields() else {
            report.failures.push(format!("Python cannot pickle {expr} (protocol {protocol}): {answer}"));
            continue;
        };
        let (bytes, want) = (unhex(&fields[0]), fields[1].clone());
        let decoded = PickleValue::decode(&bytes);
        if let Some(why) = pickle_difference(expr, protocol) {
            report.check(decoded.as_ref().is_err_and(|e| e.contains(why)), || {
                format!("{expr} (protocol {protocol}): expected an error saying {why:?}, got {decoded:?}")
            });
            differences += 1;
            continue;
        }
        let got = decoded.as_ref().map(canon);
        if let Some((_, converted)) = PICKLE_CONVERSIONS.iter().find(|(e, _)| e == expr) {
            report.check(got.as_deref() == Ok(converted), || format!("{expr} (protocol {protocol}): read as {got:?}"));
            differences += 1;
            continue;
        }
        report
            .check(got.as_ref() == Ok(&want), || format!("{expr} (protocol {protocol}): Python {want}, Rust {got:?}"));
        let typed = [
            check_int::<u64>(&want, &bytes),
            check_int::<i64>(&want, &bytes),
            check_int::<u128>(&want, &bytes),
            check_int::<i128>(&want, &bytes),
        ];
        for result in typed {
            report.check(result.is_ok(), || format!("{expr} (protocol {protocol}): {}", result.clone().unwrap_err()));
        }
        if let Ok(value) = decoded {
            rust_rewritten.push((want, PickleValue::encode(&value).expect("encode")));
        }
        read += 1;
    }
    let second: Vec<String> = rust_rewritten.iter().map(|(_, bytes)| format!("pl {}", hex(bytes))).collect();
    for ((want, _), answer) in rust_rewritten.iter().zip(oracle.ask(&second)) {
        let got = answer.fields().map(|f| f[0].clone());
        report.check(got.as_deref() == Some(want), || format!("Python unpickled Rust's rewrite of {want} as {got:?}"));
    }
    report.count(
        "Pickle: Rust encodes (u64, i64, str, tuple, list, dict, PickleValue) -> Python unpickles (typed)",
        rust_written.len(),
    );
    report.count("Pickle<f64>: Rust encodes -> Python unpickles (bits)", doubles.len());
    report.count("Pickle<f64>: Python pickles -> Rust decodes (bits)", doubles.len());
    report.count(
        "PickleValue: Python pickles (protocols 0-5) -> Rust decodes (typed; ints also into u64/i64/u128/i128)",
        read,
    );
    report.count("PickleValue: Rust re-encodes what it read -> Python unpickles (typed)", rust_rewritten.len());
    report.count("PickleValue: pickled by Python, refused (or converted) by Rust as documented", differences);
}

#[test]
fn serializers_agree_with_cpython() {
    let mut oracle = Oracle::start();
    let mut report = Report::default();
    json_doubles(&mut oracle, &mut report);
    json_documents(&mut oracle, &mut report);
    json_typed(&mut oracle, &mut report);
    json_texts(&mut oracle, &mut report);
    numeric(&mut oracle, &mut report);
    pickle(&mut oracle, &mut report);
    report.finish();
}
