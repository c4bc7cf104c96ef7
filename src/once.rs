//! Operation ids for exactly-once mode ([`ModelOptions::exactly_once`](crate::ModelOptions::exactly_once)).
//!
//! An operation id is `(client, lane, sequence)`. The *client* is a random id of
//! this process (drawn again after a `fork`, so that a child never reuses its
//! parent's ids). A *lane* is leased by one operation at a time, from when its
//! call is built until the call is dropped — after its reply, or after the last
//! resend — and then serves the next operation with a higher sequence number.
//! So on one lane at most one operation is ever unsettled, and the server needs
//! to remember, per key, client and lane, only the lane's last operation: its
//! sequence number and first result (a resend of it gets that result back; an
//! older one, a stale copy that arrives after the lane has moved on, is refused).
//!
//! Lanes are handed out lowest first, so the lanes in use stay dense: their
//! number is the peak number of exactly-once operations this process has had
//! unsettled at once, whatever the operation rate. That is the bound on the
//! server's state: per key and live client, one field per lane.
//!
//! This file imports nothing else of the crate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard};

/// The lanes of this process.
struct Lanes {
    /// The process the lanes belong to: after a `fork` the child starts afresh.
    pid: u32,
    /// The client part of every operation id: 16 hexadecimal digits.
    client: String,
    /// Bumped with the client id, so that a lane leased before a fork is not
    /// returned to the child's pool.
    generation: u64,
    /// Lanes no operation holds, lowest first.
    free: BinaryHeap<Reverse<u32>>,
    /// How many lanes exist (`0..count`).
    count: u32,
    /// The last sequence number drawn, for every lane.
    sequence: u64,
}

static LANES: Mutex<Option<Lanes>> = Mutex::new(None);

fn lanes() -> MutexGuard<'static, Option<Lanes>> {
    // Nothing panics while holding the lock; a poisoned pool is still consistent.
    LANES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The id of one exactly-once operation, holding its lane until dropped.
#[derive(Debug)]
pub(crate) struct OpId {
    client: String,
    lane: u32,
    sequence: u64,
    generation: u64,
}

impl OpId {
    /// Leases the lowest free lane and draws the next sequence number.
    pub(crate) fn next() -> OpId {
        let mut guard = lanes();
        let pid = std::process::id();
        let generation = guard.as_ref().map_or(0, |lanes| lanes.generation);
        let lanes = match guard.as_mut() {
            Some(lanes) if lanes.pid == pid => lanes,
            _ => guard.insert(Lanes {
                pid,
                client: client_id(),
                generation: generation + 1,
                free: BinaryHeap::new(),
                count: 0,
                sequence: 0,
            }),
        };
        let lane = match lanes.free.pop() {
            Some(Reverse(lane)) => lane,
            None => {
                lanes.count += 1;
                lanes.count - 1
            }
        };
        lanes.sequence += 1;
        OpId { client: lanes.client.clone(), lane, sequence: lanes.sequence, generation: lanes.generation }
    }

    /// The client id: part of the name of the key holding this client's state.
    pub(crate) fn client(&self) -> &str {
        &self.client
    }

    /// The script argument `lane:sequence:ttl_ms`.
    pub(crate) fn arg(&self, ttl_ms: u64) -> Vec<u8> {
        format!("{}:{}:{ttl_ms}", self.lane, self.sequence).into_bytes()
    }
}

impl Drop for OpId {
    fn drop(&mut self) {
        if let Some(lanes) = lanes().as_mut()
            && lanes.generation == self.generation
        {
            lanes.free.push(Reverse(self.lane));
        }
    }
}

/// 64 random bits in hexadecimal (the standard library's randomly keyed SipHash).
fn client_id() -> String {
    use std::hash::{BuildHasher, Hasher, RandomState};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_reused_lowest_first_and_sequences_only_grow() {
        let first = OpId::next();
        let second = OpId::next();
        assert_ne!(first.lane, second.lane, "one unsettled operation per lane");
        assert!(second.sequence > first.sequence);
        let (lane, sequence) = (first.lane.min(second.lane), first.sequence.max(second.sequence));
        drop(first);
        drop(second);
        let again = OpId::next();
        assert!(again.lane <= lane, "a freed lane is reused before a new one is made");
        assert!(again.sequence > sequence, "a reused lane gets a higher sequence number");
        assert_eq!(again.client().len(), 16);
        assert!(String::from_utf8(again.arg(600_000)).unwrap().ends_with(":600000"));
    }
}
