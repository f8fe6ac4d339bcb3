//! The shared store: counts in Redis, one Lua script round trip per
//! reservation.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Connection, RedisError, RedisResult, Script};
use switchboard_core::capacity::{
    jiff::Timestamp, AtCapacity, CapacityStore, ConversationKey, Counts, LimitKind, Reservation, ReservationRequest,
    Scope, StoreError, StoreErrorKind, Usage, WindowSpan,
};

use crate::memory::expiry_ms;

/// How long a key outlives the end of its window, so hosts whose clocks
/// differ a little still find the same count.
const GRACE: [Duration; 3] = [Duration::from_secs(60), Duration::from_secs(600), Duration::from_secs(3600)];

/// The check-and-count script. KEYS: per subject (the instance, then its
/// pool) the minute, hour and day counters, the day's contact set and the
/// day's contact counter; then the conversation key when one is written.
/// ARGV: mode (`reserve` | `usage`), subject count, has-contact flag,
/// contact, remember flag, remembered value, its TTL in ms; then per
/// subject the four limits (-1: none) and the four key TTLs in ms.
///
/// It reads every window of every subject first and only then, if none is
/// full, counts them all: a refused reservation writes nothing.
const SCRIPT: &str = r"
local mode = ARGV[1]
local n = tonumber(ARGV[2])
local has_contact = ARGV[3] == '1'
local contact = ARGV[4]
local out = {0, 0, 0, 0, 0}
local seen = {}
local refused = false
for s = 0, n - 1 do
  local k = s * 5
  local a = 7 + s * 8
  for w = 1, 3 do
    local count = tonumber(redis.call('GET', KEYS[k + w]) or '0')
    out[#out + 1] = count
    local limit = tonumber(ARGV[a + w])
    if not refused and limit >= 0 and count >= limit then
      refused = true
      out[1] = 1; out[2] = s; out[3] = w; out[4] = count; out[5] = limit
    end
  end
  local climit = tonumber(ARGV[a + 4])
  local ccount = 0
  local known = false
  if climit >= 0 then
    ccount = tonumber(redis.call('GET', KEYS[k + 5]) or '0')
    known = has_contact and redis.call('SISMEMBER', KEYS[k + 4], contact) == 1
    if not refused and not known and ccount >= climit then
      refused = true
      out[1] = 1; out[2] = s; out[3] = 4; out[4] = ccount; out[5] = climit
    end
  end
  out[#out + 1] = ccount
  if known then out[#out + 1] = 1 else out[#out + 1] = 0 end
  seen[s] = known
end
if mode ~= 'reserve' or refused then
  return out
end
for s = 0, n - 1 do
  local k = s * 5
  local a = 7 + s * 8
  for w = 1, 3 do
    if redis.call('INCR', KEYS[k + w]) == 1 then
      redis.call('PEXPIRE', KEYS[k + w], ARGV[a + 4 + w])
    end
  end
  if tonumber(ARGV[a + 4]) >= 0 and not seen[s] then
    if redis.call('INCR', KEYS[k + 5]) == 1 then
      redis.call('PEXPIRE', KEYS[k + 5], ARGV[a + 8])
    end
    if has_contact then
      redis.call('SADD', KEYS[k + 4], contact)
      redis.call('PEXPIRE', KEYS[k + 4], ARGV[a + 8])
    end
  end
end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[n * 5 + 1], ARGV[6], 'PX', ARGV[7])
end
return out
";

/// How to reach Redis (the `capacity:` section of rules.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port/db` (`rediss://` is not built in).
    pub url: String,
    /// Prefix of every key; default `switchboard:`.
    pub key_prefix: String,
    /// Bound on opening a connection (TCP connect and handshake).
    pub connect_timeout: Duration,
    /// Bound on each command's write and reply.
    pub io_timeout: Duration,
    /// Idle connections kept for reuse; more callers at once open more.
    pub max_idle: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: "switchboard:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(1),
            max_idle: 64,
        }
    }
}

/// The Redis capacity store (`store: redis`): one Redis, or Redis Cluster
/// shard per location, shared by every process that uses it.
///
/// A reservation is one `EVALSHA` of a Lua script that checks every window
/// of the instance and its pool (and the day's contact set), then counts
/// them all, and writes the conversation memory when asked: one round trip,
/// atomic in Redis, so no limit is exceeded across processes and hosts.
/// Every key of a location carries it as a cluster hash tag (`{shop}`) and
/// expires by itself (window end plus a grace period), so nothing needs
/// cleaning.
///
/// Calls are blocking (the [`CapacityStore`] trait is synchronous), over a
/// small pool of connections with connect and I/O timeouts. A connection
/// that fails is dropped and a fresh one opened on the next call, so the
/// store recovers by itself when Redis returns; errors become
/// [`StoreError`]s, never panics or hangs.
pub struct RedisStore {
    client: redis::Client,
    config: RedisConfig,
    script: Script,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config`. Checks the URL but does not connect: a service
    /// starts while Redis is down and connects when it comes up (see
    /// [`CapacityStore::ping`]).
    pub fn open(config: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::new(StoreErrorKind::Config, format!("redis_url `{}`: {e}", config.url)))?;
        Ok(RedisStore { client, config, script: Script::new(SCRIPT), idle: Mutex::default() })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The key prefix of one location: `switchboard:{shop}:`.
    pub fn location_prefix(&self, location: &str) -> String {
        let mut key = String::with_capacity(self.config.key_prefix.len() + location.len() + 4);
        key.push_str(&self.config.key_prefix);
        key.push('{');
        escape_into(&mut key, location);
        key.push_str("}:");
        key
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let connection = self.client.get_connection_with_timeout(self.config.connect_timeout).map_err(store_error)?;
        connection.set_read_timeout(Some(self.config.io_timeout)).map_err(store_error)?;
        connection.set_write_timeout(Some(self.config.io_timeout)).map_err(store_error)?;
        Ok(connection)
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle();
        if idle.len() < self.config.max_idle {
            idle.push(connection);
        }
    }

    /// Runs `command` on a pooled connection (or a new one). A pooled
    /// connection found dead (Redis restarted) is replaced once by a fresh
    /// connection, and the other idle ones, probably dead too, are dropped.
    /// A timeout is never retried: Redis may have run the command.
    fn run<T>(&self, command: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T, StoreError> {
        let pooled = self.idle().pop();
        let was_pooled = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect()?,
        };
        match command(&mut connection) {
            Ok(value) => {
                self.put_back(connection);
                Ok(value)
            }
            Err(error) if was_pooled && error.is_connection_dropped() && !error.is_timeout() => {
                drop(connection);
                self.idle().clear();
                let mut connection = self.connect()?;
                let value = command(&mut connection).map_err(store_error)?;
                self.put_back(connection);
                Ok(value)
            }
            Err(error) => {
                if !error.is_io_error() && !error.is_timeout() && !error.is_connection_dropped() {
                    // A reply error leaves the connection usable.
                    self.put_back(connection);
                }
                Err(store_error(error))
            }
        }
    }

    /// Runs the script in `mode` for `request`; the flat integer reply.
    fn script(&self, request: &ReservationRequest<'_>, mode: &str) -> Result<Vec<i64>, StoreError> {
        let windows = request.windows();
        let base = self.location_prefix(request.location);
        let mut invocation = self.script.prepare_invoke();
        let mut subjects = vec![("i:", request.instance, request.limits)];
        if let Some(pool) = request.pool {
            subjects.push(("p:", pool.id, pool.limits));
        }
        for (kind, id, _) in &subjects {
            let mut subject = base.clone();
            subject.push_str(kind);
            escape_into(&mut subject, id);
            subject.push(':');
            for span in &windows {
                invocation.key(format!("{subject}{}", span.key()));
            }
            let day = &windows[2].key()[1..];
            invocation.key(format!("{subject}c{day}"));
            invocation.key(format!("{subject}n{day}"));
        }
        let remember = match (request.remember, request.contact) {
            (Some(remember), Some(contact)) if mode == "reserve" => Some((remember, contact)),
            _ => None,
        };
        invocation
            .arg(mode)
            .arg(subjects.len())
            .arg(if request.contact.is_some() { "1" } else { "0" })
            .arg(request.contact.unwrap_or(""));
        match remember {
            Some((remember, contact)) => {
                let key = ConversationKey { location: request.location, channel: remember.channel, contact };
                invocation.key(self.conversation_key(&key));
                let value = format!("{}:{}", expiry_ms(request.now, remember.ttl), request.instance);
                invocation.arg("1").arg(value).arg(ttl_ms(remember.ttl));
            }
            None => {
                invocation.arg("0").arg("").arg(0);
            }
        }
        for (_, _, limits) in &subjects {
            for limit in [limits.per_minute, limits.per_hour, limits.per_day, limits.contacts_per_day] {
                invocation.arg(limit.map_or(-1, i64::from));
            }
            for (span, grace) in windows.iter().zip(GRACE) {
                invocation.arg(key_ttl(span, request.now, grace));
            }
            invocation.arg(key_ttl(&windows[2], request.now, GRACE[2]));
        }
        let reply: Vec<i64> = self.run(|connection| invocation.invoke(connection))?;
        let expected = 5 + 5 * subjects.len();
        if reply.len() != expected {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                format!("the capacity script answered {} values, expected {expected}", reply.len()),
            ));
        }
        Ok(reply)
    }

    fn conversation_key(&self, key: &ConversationKey<'_>) -> String {
        let mut redis_key = self.location_prefix(key.location);
        redis_key.push_str("conv:");
        escape_into(&mut redis_key, key.channel);
        redis_key.push(':');
        escape_into(&mut redis_key, key.contact);
        redis_key
    }
}

/// Counts and contact flag of subject `s` in a script reply.
fn subject_counts(reply: &[i64], s: usize) -> (Counts, bool) {
    let at = |i: usize| reply.get(5 + s * 5 + i).copied().unwrap_or(0);
    let count = |i: usize| u64::try_from(at(i)).unwrap_or(0);
    (Counts { minute: count(0), hour: count(1), day: count(2), contacts: count(3) }, at(4) == 1)
}

impl CapacityStore for RedisStore {
    fn reserve(&self, request: &ReservationRequest<'_>) -> Result<Reservation, StoreError> {
        let reply = self.script(request, "reserve")?;
        if reply[0] == 0 {
            return Ok(Reservation::Reserved);
        }
        let scope = if reply[1] == 0 { Scope::Instance } else { Scope::Pool };
        let kind = match reply[2] {
            1 => LimitKind::PerMinute,
            2 => LimitKind::PerHour,
            3 => LimitKind::PerDay,
            _ => LimitKind::ContactsPerDay,
        };
        let count = u64::try_from(reply[3]).unwrap_or(0);
        let limit = u32::try_from(reply[4]).unwrap_or(u32::MAX);
        Ok(Reservation::AtCapacity(AtCapacity { scope, kind, count, limit }))
    }

    fn usage(&self, request: &ReservationRequest<'_>) -> Result<Usage, StoreError> {
        let reply = self.script(request, "usage")?;
        let pool = request.pool.map(|_| subject_counts(&reply, 1));
        Ok(Usage::from_parts(subject_counts(&reply, 0), pool))
    }

    fn remember(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let redis_key = self.conversation_key(key);
        let value = format!("{}:{instance}", expiry_ms(now, ttl));
        let ttl = ttl_ms(ttl);
        self.run(|connection| redis::cmd("SET").arg(&redis_key).arg(&value).arg("PX").arg(ttl).query::<()>(connection))
    }

    fn recall(&self, key: &ConversationKey<'_>, now: Timestamp) -> Result<Option<String>, StoreError> {
        let redis_key = self.conversation_key(key);
        let value: Option<String> = self.run(|connection| redis::cmd("GET").arg(&redis_key).query(connection))?;
        let Some(value) = value else { return Ok(None) };
        let Some((expires, instance)) = value.split_once(':') else {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                format!("conversation `{redis_key}` holds `{value}`"),
            ));
        };
        let expires: i64 = expires.parse().map_err(|_| {
            StoreError::new(StoreErrorKind::Protocol, format!("conversation `{redis_key}` holds `{value}`"))
        })?;
        Ok((expires > now.as_millisecond()).then(|| instance.to_owned()))
    }

    fn forget(&self, key: &ConversationKey<'_>) -> Result<bool, StoreError> {
        let redis_key = self.conversation_key(key);
        let erased: i64 = self.run(|connection| redis::cmd("DEL").arg(&redis_key).query(connection))?;
        Ok(erased > 0)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run(|connection| redis::cmd("PING").query::<()>(connection))
    }
}

/// Milliseconds a window's key lives, from `now`: what is left of the
/// window plus `grace`. Relative, so a request dated in the past (a replay)
/// still keeps its counts for the window's length.
fn key_ttl(span: &WindowSpan, now: Timestamp, grace: Duration) -> u64 {
    span.remaining_ms(now).saturating_add(ttl_ms(grace))
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Appends `id` with `%`, `:`, `{` and `}` percent-escaped, so ids cannot
/// forge another key or break the hash tag.
fn escape_into(key: &mut String, id: &str) {
    for c in id.chars() {
        match c {
            '%' | ':' | '{' | '}' => {
                let _ = write!(key, "%{:02X}", u32::from(c));
            }
            c => key.push(c),
        }
    }
}

fn store_error(error: RedisError) -> StoreError {
    let kind = if error.is_timeout() {
        StoreErrorKind::Timeout
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Protocol
    };
    StoreError::new(kind, format!("redis: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_in_keys() {
        let store = RedisStore::open(RedisConfig::default()).unwrap();
        assert_eq!(store.location_prefix("shop"), "switchboard:{shop}:");
        assert_eq!(store.location_prefix("a}:i:{b%"), "switchboard:{a%7D%3Ai%3A%7Bb%25}:");
        let key = ConversationKey { location: "shop", channel: "whatsapp", contact: "c:1" };
        assert_eq!(store.conversation_key(&key), "switchboard:{shop}:conv:whatsapp:c%3A1");
    }

    #[test]
    fn a_malformed_url_is_a_config_error() {
        let config = RedisConfig { url: "not a url".to_owned(), ..RedisConfig::default() };
        let error = RedisStore::open(config).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Config);
    }
}
