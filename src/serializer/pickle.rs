//! [`Pickle<T>`]: Python pickle into serde types; [`PickleValue`]: into Python's own
//! value types.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::{Serializer, falsy_hint, generic_name, parse_decimal};

/// A Python value as pickle holds it, keeping what serde's data model cannot: a
/// list apart from a tuple, a set from a frozenset, bytes from str, and ints of any
/// size (`PyValue::Int`, a `num_bigint::BigInt`). serde-pickle's `Value`, re-exported.
pub use serde_pickle::Value as PyValue;

/// A Python value that can be a dict key or a set member. serde-pickle's
/// `HashableValue`, re-exported.
pub use serde_pickle::HashableValue as PyHashableValue;

/// Python pickle (`redisext.serializer.Pickle`) into serde types. Writes protocol
/// 3, which every Python 3 reads; reads protocols 0 to 5, so values pickled by
/// Python's default protocol decode here.
///
/// Integers go over the whole `i64` and `u64` ranges both ways, and are read up to
/// 128 bits into `i128`/`u128` (serde-pickle cannot write 128-bit integers); a
/// Python int beyond the target type is a decode error naming it. Through serde's data model a tuple, list, set or frozenset all read as a
/// sequence, and bytes as a sequence of numbers unless the field uses
/// `serde_bytes`: to keep Python's own types, use [`PickleValue`].
///
/// Pickled values round-trip between the languages, but are **not byte-identical**
/// (Python writes protocol 4 or 5 with framing and memo opcodes): a pickled member
/// pushed into a `Pool` or `SortedSet` by one language is not found by `contains`
/// or `rem` from the other. Use [`Json`](super::Json) for members shared across
/// languages. Python redisext does not pickle falsy values (`0`, `""`): it stores
/// them as their text, which neither language unpickles (see `docs/python.md`).
///
/// ```
/// use redisext::serializer::{Pickle, Serializer};
/// // The whole u64 range, and a clear error beyond the target type.
/// assert_eq!(Pickle::<u64>::decode(&Pickle::<u64>::encode(&u64::MAX)?)?, u64::MAX);
/// // Python: pickle.dumps(2**64)
/// let two_to_the_64 = b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.";
/// assert_eq!(Pickle::<u128>::decode(two_to_the_64)?, 1 << 64);
/// assert!(Pickle::<u64>::decode(two_to_the_64).unwrap_err().contains("expected u64"));
/// # Ok::<(), String>(())
/// ```
pub struct Pickle<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + Send + 'static> Serializer for Pickle<T> {
    type Value = T;
    type Owned = T;
    const NAME: &'static str = "Pickle";

    fn name() -> String {
        generic_name::<T>(Self::NAME)
    }

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_pickle::to_vec(value, serde_pickle::SerOptions::new()).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        let options = serde_pickle::DeOptions::new;
        match serde_pickle::from_slice(bytes, options()) {
            // Read those through serde-pickle's value tree, which keeps every int.
            Err(error) if refused_wide_integer(&error) => {
                serde_pickle::value_from_slice(bytes, options()).and_then(|value| T::deserialize(Tree(value)))
            }
            read => read,
        }
        .map_err(explain(bytes))
    }
}

/// Python pickle (`redisext.serializer.Pickle`) as Python's own value types
/// ([`PyValue`]): list vs tuple, set vs frozenset, bytes vs str, ints of any size,
/// read exactly as pickled and written back as the same Python types (protocol 3).
/// Python dicts come back ordered by key, not in insertion order.
///
/// ```
/// use redisext::serializer::{PickleValue, PyHashableValue, PyValue, Serializer};
/// // Python: pickle.dumps((1, [b"raw", "text"], frozenset({2}), 2**70))
/// let python = b"\x80\x04\x95'\x00\x00\x00\x00\x00\x00\x00(K\x01]\x94(C\x03raw\x94\x8c\x04text\x94e\
///                (K\x02\x91\x94\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@t\x94.";
/// let value = PickleValue::decode(python)?;
/// let PyValue::Tuple(items) = &value else { panic!("a tuple stays a tuple: {value:?}") };
/// assert_eq!(items[1], PyValue::List(vec![PyValue::Bytes(b"raw".to_vec()), PyValue::String("text".into())]));
/// assert_eq!(items[2], PyValue::FrozenSet([PyHashableValue::I64(2)].into()));
/// assert_eq!(format!("{:?}", items[3]), "Int(1180591620717411303424)"); // 2**70, exact
/// // Written back, Python reads the same tuple, list, bytes, str, frozenset and int.
/// assert_eq!(PickleValue::decode(&PickleValue::encode(&value)?)?, value);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct PickleValue;

impl Serializer for PickleValue {
    type Value = PyValue;
    type Owned = PyValue;
    const NAME: &'static str = "PickleValue";

    fn encode(value: &PyValue) -> Result<Vec<u8>, String> {
        serde_pickle::value_to_vec(value, serde_pickle::SerOptions::new()).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<PyValue, String> {
        serde_pickle::value_from_slice(bytes, serde_pickle::DeOptions::new()).map_err(explain(bytes))
    }
}

/// Whether serde-pickle refused an int beyond `i64` (it does even into a `u64`) or
/// an `i128`/`u128` target (it has none).
fn refused_wide_integer(error: &serde_pickle::Error) -> bool {
    use serde_pickle::ErrorCode::{InvalidValue, Structure};
    match error {
        serde_pickle::Error::Syntax(InvalidValue(what)) => what == "integer too large",
        serde_pickle::Error::Syntax(Structure(what)) => {
            what == "i128 is not supported" || what == "u128 is not supported"
        }
        _ => false,
    }
}

const PYTHON_OBJECT: &str = " (the pickle refers to a Python class or function by name, as it does for \
     any object but the builtin types: only those have a Rust counterpart)";

/// A decode error's text, with why Python may have stored such bytes.
fn explain(bytes: &[u8]) -> impl Fn(serde_pickle::Error) -> String + '_ {
    move |error| {
        let hint = match &error {
            serde_pickle::Error::Syntax(serde_pickle::ErrorCode::UnresolvedGlobal) => PYTHON_OBJECT,
            serde_pickle::Error::Eval(serde_pickle::ErrorCode::InvalidStackTop(_, found), _)
                if found.starts_with("Global") =>
            {
                PYTHON_OBJECT
            }
            _ if parse_decimal(bytes).is_ok() || std::str::from_utf8(bytes).is_ok_and(|t| t.parse::<f64>().is_ok()) => {
                " (this is a number as text, which Python redisext stores for a falsy number \
                 such as 0 or 0.0: it skips its serializer for falsy values, and cannot unpickle \
                 the text itself either; read such keys with Raw or Numeric)"
            }
            _ => falsy_hint(bytes),
        };
        format!("{error}{hint}")
    }
}

/// A decoded pickle deserialized into a serde type as serde-pickle does it, except
/// that ints beyond `i64` reach the visitor as `u64`, `i128` or `u128` (serde-pickle
/// refuses them all), and ints beyond 128 bits are refused saying so.
struct Tree(PyValue);

impl<'de> IntoDeserializer<'de, serde_pickle::Error> for Tree {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

type Entries = MapDeserializer<'static, std::vec::IntoIter<(Tree, Tree)>, serde_pickle::Error>;

fn entries(pairs: Vec<(Tree, Tree)>) -> Entries {
    MapDeserializer::new(pairs.into_iter())
}

impl<'de> de::Deserializer<'de> for Tree {
    type Error = serde_pickle::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            PyValue::None => visitor.visit_unit(),
            PyValue::Bool(b) => visitor.visit_bool(b),
            PyValue::I64(n) => visitor.visit_i64(n),
            PyValue::Int(n) => visit_int(&n.to_signed_bytes_le(), &n, visitor),
            PyValue::F64(f) => visitor.visit_f64(f),
            PyValue::Bytes(b) => visitor.visit_byte_buf(b),
            PyValue::String(s) => visitor.visit_string(s),
            PyValue::List(items) | PyValue::Tuple(items) => {
                visitor.visit_seq(SeqDeserializer::new(items.into_iter().map(Tree)))
            }
            PyValue::Set(items) | PyValue::FrozenSet(items) => {
                visitor.visit_seq(SeqDeserializer::new(items.into_iter().map(|item| Tree(item.into_value()))))
            }
            PyValue::Dict(dict) => {
                visitor.visit_map(entries(dict.into_iter().map(|(k, v)| (Tree(k.into_value()), Tree(v))).collect()))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            PyValue::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // serde-pickle's representations: 'Variant', {'Variant': data}, and the
        // older ('Variant',) and ('Variant', data).
        let (variant, data) = match self.0 {
            PyValue::String(name) => return visitor.visit_enum(name.into_deserializer()),
            PyValue::Dict(mut dict) if dict.len() == 1 => match dict.pop_first() {
                Some((name, data)) => (name.into_value(), data),
                None => (PyValue::None, PyValue::None),
            },
            PyValue::Tuple(items) if (1..=2).contains(&items.len()) => {
                let mut items = items.into_iter();
                (items.next().unwrap_or(PyValue::None), items.next().unwrap_or(PyValue::None))
            }
            other => {
                return Err(de::Error::custom(format!(
                    "expected an enum ('Variant' or {{'Variant': data}}), found {other:?}"
                )));
            }
        };
        visitor.visit_enum(MapAccessDeserializer::new(entries(vec![(Tree(variant), Tree(data))])))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Visits a Python int given as two's-complement little-endian bytes: as `u64` or
/// `i64` when it fits, else as `u128` or `i128`; beyond 128 bits an error.
fn visit_int<'de, V: Visitor<'de>>(
    le: &[u8],
    shown: &dyn std::fmt::Display,
    visitor: V,
) -> Result<V::Value, serde_pickle::Error> {
    let negative = le.last().is_some_and(|b| b & 0x80 != 0);
    // A positive int's bytes may end with a zero sign byte: a u128 takes up to 17.
    if !negative && (le.len() <= 16 || (le.len() == 17 && le[16] == 0)) {
        let mut buf = [0u8; 16];
        let len = le.len().min(16);
        buf[..len].copy_from_slice(&le[..len]);
        let value = u128::from_le_bytes(buf);
        return match u64::try_from(value) {
            Ok(n) => visitor.visit_u64(n),
            Err(_) => visitor.visit_u128(value),
        };
    }
    if negative && le.len() <= 16 {
        let mut buf = [0xffu8; 16];
        buf[..le.len()].copy_from_slice(le);
        let value = i128::from_le_bytes(buf);
        return match i64::try_from(value) {
            Ok(n) => visitor.visit_i64(n),
            Err(_) => visitor.visit_i128(value),
        };
    }
    Err(de::Error::custom(format!(
        "the Python int {shown} is beyond 128 bits, the most a Rust integer holds: read it with the \
         PickleValue serializer, which keeps ints of any size"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_round_trips() {
        let bytes = Pickle::<Vec<String>>::encode(&vec!["a".to_owned(), "ü".to_owned()]).unwrap();
        assert_eq!(bytes[..2], [0x80, 3], "protocol 3 header");
        assert_eq!(Pickle::<Vec<String>>::decode(&bytes).unwrap(), vec!["a".to_owned(), "ü".to_owned()]);
    }

    #[test]
    fn integers_over_the_whole_u64_and_i64_ranges() {
        for n in [0, 1, i64::MAX as u64, 1 << 63, u64::MAX - 1, u64::MAX] {
            assert_eq!(Pickle::<u64>::decode(&Pickle::<u64>::encode(&n).unwrap()), Ok(n), "{n}");
        }
        for n in [i64::MIN, -1, i64::MAX] {
            assert_eq!(Pickle::<i64>::decode(&Pickle::<i64>::encode(&n).unwrap()), Ok(n), "{n}");
        }
        let over = Pickle::<u64>::encode(&u64::MAX).unwrap();
        assert!(Pickle::<i64>::decode(&over).unwrap_err().contains("expected i64"));
    }

    #[test]
    fn python_falsy_values_are_explained() {
        assert!(Pickle::<i64>::decode(b"0").unwrap_err().contains("falsy"));
        assert!(Pickle::<String>::decode(b"").unwrap_err().contains("falsy"));
    }
}
