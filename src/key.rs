//! Redis keys: validation, namespaces, and sibling keys that share a hash slot.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, KeyDisplay, Result};

/// The largest key or value Redis accepts by default (`proto-max-bulk-len`).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// A non-empty Redis key, cheap to clone.
///
/// Any bytes are allowed; the key is used exactly as given (behind the model's
/// namespace, when one is set), so Python redisext finds the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(Arc<[u8]>);

impl Key {
    /// Checks and wraps a key: empty keys and keys over 512 MiB are refused.
    ///
    /// ```
    /// use redisext::Key;
    /// assert!(Key::new("visitors").is_ok());
    /// assert!(matches!(Key::new(""), Err(redisext::Error::EmptyKey)));
    /// ```
    pub fn new(key: impl AsRef<[u8]>) -> Result<Key> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > MAX_BULK_LEN {
            return Err(Error::TooLarge { what: "key", len: key.len(), max: MAX_BULK_LEN });
        }
        Ok(Key(Arc::from(key)))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// This key behind a namespace prefix (`prefix` + key, with no separator added).
    pub(crate) fn in_namespace(&self, namespace: Option<&[u8]>) -> Result<Key> {
        match namespace {
            None | Some([]) => Ok(self.clone()),
            Some(prefix) => Key::new([prefix, &self.0].concat()),
        }
    }

    /// A sibling key for the same model that lands in the same Redis Cluster hash
    /// slot: `key:suffix` when the key already has a hash tag, else `{key}:suffix`.
    ///
    /// A key without a hash tag that contains `}` cannot be wrapped in a tag (the
    /// tag would end early and hash elsewhere); such a key is refused with
    /// [`Error::InvalidArgument`]: give it an explicit hash tag instead.
    ///
    /// ```
    /// use redisext::Key;
    /// assert_eq!(Key::new("jobs")?.sibling("leased")?.as_bytes(), b"{jobs}:leased");
    /// assert_eq!(Key::new("{jobs}:a")?.sibling("leased")?.as_bytes(), b"{jobs}:a:leased");
    /// assert!(Key::new("a}b")?.sibling("leased").is_err());
    /// # Ok::<(), redisext::Error>(())
    /// ```
    pub fn sibling(&self, suffix: &str) -> Result<Key> {
        let bytes = if hash_tag(&self.0).is_some() {
            [&self.0[..], b":", suffix.as_bytes()].concat()
        } else if self.0.contains(&b'}') {
            return Err(Error::InvalidArgument {
                op: "key/sibling",
                reason: format!(
                    "key {} contains '}}' but no hash tag, so no sibling key can share its hash slot; \
                     give it a hash tag such as {{name}}",
                    self.display()
                ),
            });
        } else {
            [b"{", &self.0[..], b"}:", suffix.as_bytes()].concat()
        };
        Key::new(bytes)
    }

    /// A printable form of the key for messages.
    pub fn display(&self) -> KeyDisplay {
        KeyDisplay::from(self.0.clone())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.display())
    }
}

/// The hash tag of a key as Redis Cluster defines it: the bytes between the first
/// `{` and the next `}`, when there are any.
pub(crate) fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let close = key[open + 1..].iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag, or of the
/// whole key when it has none, modulo 16384.
///
/// ```
/// assert_eq!(redisext::hash_slot(b"foo"), 12182);
/// assert_eq!(redisext::hash_slot(b"{user1000}.following"), redisext::hash_slot(b"user1000"));
/// ```
pub fn hash_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key).unwrap_or(key)) % 16384
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster uses.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_spec() {
        // The check value the Redis Cluster specification gives for its CRC16.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b""), 0);
    }

    #[test]
    fn hash_tags_follow_the_cluster_spec() {
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
        assert_eq!(hash_tag(b"plain"), None);
        assert_eq!(hash_tag(b"open{only"), None);
    }

    #[test]
    fn keys_with_a_stray_brace_have_no_sibling() {
        // `{}` is an empty tag, so the whole key is hashed, and `{foo{}{bar}}:x`
        // would hash `foo{` instead: refused rather than silently split.
        assert!(Key::new("foo{}{bar}").unwrap().sibling("x").is_err());
        assert!(Key::new("a}b").unwrap().sibling("x").is_err());
        let open_only = Key::new("a{b").unwrap().sibling("x").unwrap();
        assert_eq!(hash_tag(open_only.as_bytes()), Some(&b"a{b"[..]));
    }

    #[test]
    fn namespace_is_a_plain_prefix() {
        let key = Key::new("visitors").unwrap();
        assert_eq!(key.in_namespace(Some(b"app:")).unwrap().as_bytes(), b"app:visitors");
        assert_eq!(key.in_namespace(None).unwrap().as_bytes(), b"visitors");
    }

    #[test]
    fn display_escapes_binary() {
        let key = Key::new(b"a\x00\xffb\"").unwrap();
        assert_eq!(key.display().to_string(), "\"a\\x00\\xffb\\\"\"");
    }
}
