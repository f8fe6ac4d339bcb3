//! # switchboard-state
//!
//! The capacity stores of Switchboard (docs/capacity.md): where the counts of
//! decisions per instance and pool, and the conversation memory, live.
//! Both implement [`switchboard_core::CapacityStore`], whose one atomic verb,
//! `reserve`, checks every calendar window of an instance and its pool and
//! only then counts them all.
//!
//! - [`MemoryStore`] (`store: memory`, the default): this process only,
//!   sharded by location, windows expiring by key with no sweeper thread.
//! - [`RedisStore`] (`store: redis`): shared by every process and host using
//!   the same Redis; one Lua script round trip per reservation.
//!
//! ```
//! use switchboard_core::capacity::{jiff::Timestamp, timezone, Limits, PoolRef};
//! use switchboard_core::{CapacityStore, Reservation, ReservationRequest};
//! use switchboard_state::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let tz = timezone("America/New_York").unwrap();
//! let now: Timestamp = "2026-11-25T14:00:00Z".parse().unwrap();
//! let request = ReservationRequest {
//!     limits: Limits { per_day: Some(2), ..Limits::NONE },
//!     pool: Some(PoolRef { id: "brand-a", limits: Limits { per_day: Some(1000), ..Limits::NONE } }),
//!     contact: Some("c-1"),
//!     ..ReservationRequest::new("shop", &tz, "wa-1", now)
//! };
//! assert_eq!(store.reserve(&request).unwrap(), Reservation::Reserved);
//! assert_eq!(store.reserve(&request).unwrap(), Reservation::Reserved);
//! match store.reserve(&request).unwrap() {
//!     Reservation::AtCapacity(full) => {
//!         assert_eq!(full.message("wa-1", Some("brand-a")), "wa-1 at capacity: 2/2 today");
//!     }
//!     Reservation::Reserved => unreachable!("the day's limit is 2"),
//! }
//! // The next local day has room again: time is an input.
//! let tomorrow = ReservationRequest { now: "2026-11-26T14:00:00Z".parse().unwrap(), ..request };
//! assert!(store.reserve(&tomorrow).unwrap().is_reserved());
//! ```
//!
//! A [`RedisStore`] is opened from a [`RedisConfig`] and used the same way;
//! it does not connect until first used, and recovers by itself when Redis
//! comes back.

mod memory;
mod redis_store;

pub use memory::MemoryStore;
pub use redis_store::{RedisConfig, RedisStore};
