//! What acquisitions hand back: a reliable queue's [`Receipt`] and [`Delivered`]
//! item, a resource pool's [`Lease`]. Errors carry them (an item delivered or a
//! member leased that the serializer cannot decode is still in flight), so they
//! live here, below the errors: this file imports nothing else of the crate.

use std::time::SystemTime;

/// Identifies one delivery of one item: what [`ReliableQueue::ack`](crate::ReliableQueue::ack),
/// [`nack`](crate::ReliableQueue::nack) and [`extend`](crate::ReliableQueue::extend) need. A
/// receipt goes stale when the item is delivered again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub(crate) id: u64,
    pub(crate) delivery: u32,
}

impl Receipt {
    /// The item's id, unique in this queue (ids only grow).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Which delivery of the item this is: 1 for the first.
    pub fn delivery(&self) -> u32 {
        self.delivery
    }
}

/// An item handed to a consumer by [`ReliableQueue::pop`](crate::ReliableQueue::pop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered<T> {
    pub(crate) value: T,
    pub(crate) receipt: Receipt,
    pub(crate) deadline: SystemTime,
}

impl<T> Delivered<T> {
    /// The item.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The item, consuming the delivery (keep the [`receipt`](Self::receipt) first).
    pub fn into_value(self) -> T {
        self.value
    }

    /// The receipt to acknowledge this delivery with.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// Which delivery of the item this is: 1 for the first, more after deadlines
    /// passed or nacks.
    pub fn delivery(&self) -> u32 {
        self.receipt.delivery
    }

    /// When the item becomes ready again unless acknowledged or extended, in the
    /// server's time.
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }
}

/// One lease of a pool member: what [`ResourcePool::checkout`](crate::ResourcePool::checkout) returns.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease<T> {
    pub(crate) member: T,
    pub(crate) stored: Vec<u8>,
    pub(crate) fence: u64,
    pub(crate) deadline: SystemTime,
}

impl<T> Lease<T> {
    /// The member leased.
    pub fn member(&self) -> &T {
        &self.member
    }

    /// The member, consuming the lease (which can then no longer be checked in).
    pub fn into_member(self) -> T {
        self.member
    }

    /// The fencing number: larger than that of every earlier lease of this pool, so
    /// a resource can refuse a holder whose lease has been superseded. It is also
    /// the lease's token: checkin and extend need it.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// When the lease ends unless extended, in the server's time.
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Lease<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The stored bytes repeat the member; leave them out.
        f.debug_struct("Lease")
            .field("member", &self.member)
            .field("fence", &self.fence)
            .field("deadline", &self.deadline)
            .finish()
    }
}
