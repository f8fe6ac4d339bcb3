//! The shared store: counts in Redis, one Lua script round trip per
//! reservation.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::{
    Connection, ConnectionLike, ErrorKind, IntoConnectionInfo, RedisError, RedisResult, Script, ServerErrorKind,
    TlsCertificates,
};
use switchboard_core::capacity::{
    jiff::Timestamp, AtCapacity, CapacityStore, ConversationKey, Counts, DeliveryUpdate, HealthList, HealthPolicy,
    HealthRecord, LimitKind, LiveState, Reservation, ReservationRequest, Scope, StatusOverride, StatusUpdate,
    StoreError, StoreErrorKind, Transition, Usage, WindowCounts, WindowSpan, INBOUND_KEPT,
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

/// The `instance_status` script (docs/live-state.md). KEYS: the location's live hash.
/// ARGV: the instance's field, the event's time in ms, the new value
/// (`<time ms>:<override JSON, or empty for a clear>`). An event older than
/// the one the field holds is stale: nothing is written, 0 is returned.
const STATUS_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local t = tonumber(string.match(current, '^(-?%d+):'))
  if t and t > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
";

/// The `inbound` script (docs/live-state.md). KEYS: the contact's conversation key,
/// its last-inbound key. ARGV: the instance, the event's time (ms), the
/// conversation `ttl` (ms), the conversation value to write, how long the
/// last inbound is kept (ms). The last inbound is replaced unless a later
/// one is kept; the memory is replaced unless it is more recent (its
/// expiry minus the `ttl` after the event's time). 1 when the memory
/// changed.
const INBOUND_SCRIPT: &str = r"
local time = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local last = redis.call('GET', KEYS[2])
local at = last and tonumber(string.match(last, '^(-?%d+):'))
if not at or at <= time then
  redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[1], 'PX', ARGV[5])
end
local memory = redis.call('GET', KEYS[1])
local expires = memory and tonumber(string.match(memory, '^(-?%d+):'))
if expires and expires > time and expires - ttl > time then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return 1
";

/// The first half of a `delivery` (docs/live-state.md). KEYS: the location's
/// live hash, the instance's deliveries and failures (sorted sets scored by
/// time in ms). ARGV: the instance's health field, the start of the
/// event's window (exclusive, ms), the event's time (ms). Drops what fell
/// out of the window; answers the health record (empty when none) and the
/// deliveries and failures in the window. The transition is computed by
/// the caller ([`HealthRecord::deliver`]), then written by
/// [`DELIVERY_COMMIT_SCRIPT`] only if the record is still the one read.
const DELIVERY_READ_SCRIPT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local record = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local from = '(' .. ARGV[2]
return {record, redis.call('ZCOUNT', KEYS[2], from, ARGV[3]), redis.call('ZCOUNT', KEYS[3], from, ARGV[3])}
";

/// The second half of a `delivery`. KEYS: as [`DELIVERY_READ_SCRIPT`].
/// ARGV: the health field, the record read (empty for none), the new
/// record, the event's time (ms), `1` when it failed, how long the window
/// keys are kept (ms). 0, writing nothing, when another process changed
/// the record in between (the caller reads again); else counts the
/// delivery in the window and writes the record: 1.
const DELIVERY_COMMIT_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return 0
end
local member = ARGV[4] .. ':' .. redis.call('HINCRBY', KEYS[1], ':seq', 1)
redis.call('ZADD', KEYS[2], ARGV[4], member)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], ARGV[4], member)
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
";

/// How many times a delivery is read and written again when other
/// processes keep changing the same instance's health in between.
const DELIVERY_ATTEMPTS: usize = 16;

/// How often every process asks Redis whether live state changed (one
/// `GET` of the fleet's live epoch): an event applied by any process is in
/// force everywhere well within a second (docs/live-state.md).
const LIVE_POLL: Duration = Duration::from_millis(250);

/// What this process knows of the fleet's live state: refreshed by a
/// poller thread when the fleet's epoch moves, read by every decision
/// without a round trip.
#[derive(Default)]
struct LiveCache {
    /// The fleet's epoch last seen (`None` before the first poll).
    epoch: Option<i64>,
    /// The locations that have live state.
    locations: std::collections::HashSet<String>,
    /// The live state of locations read since the epoch last moved.
    states: std::collections::HashMap<String, switchboard_core::capacity::LiveState>,
}

/// How to reach Redis (the `capacity:` section of rules.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// One server: `redis://[user:password@]host:port/db`, or `rediss://`
    /// for TLS. Not used when `cluster` names seed nodes.
    pub url: String,
    /// The seed nodes of a Redis Cluster (`redis://` or `rediss://` URLs,
    /// any reachable ones: the slots are discovered). Empty: one server.
    pub cluster: Vec<String>,
    /// PEM certificates of the CAs that sign the servers' TLS certificates
    /// (`tls_ca_file`); `None` trusts the system's roots.
    pub tls_ca_pem: Option<Vec<u8>>,
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
            cluster: Vec::new(),
            tls_ca_pem: None,
            key_prefix: "switchboard:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(1),
            max_idle: 64,
        }
    }
}

impl RedisConfig {
    /// What the store reaches, for messages: the URL, or the cluster's
    /// seeds, with any password hidden.
    pub fn target(&self) -> String {
        if self.cluster.is_empty() {
            redact(&self.url)
        } else {
            format!("cluster [{}]", self.cluster.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", "))
        }
    }
}

/// `url` with the password of its user part replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((user, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match user.split_once(':') {
        Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
        None => url.to_owned(),
    }
}

/// One server, or a cluster: what connections are opened from.
#[derive(Clone)]
enum Client {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// A pooled connection of either kind. A cluster connection holds one
/// connection per node and routes each command by its keys' slot,
/// following MOVED and ASK redirections.
enum Link {
    Single(Connection),
    // Boxed: it holds a map of node connections and is far larger.
    Cluster(Box<ClusterConnection>),
}

impl Link {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Single(connection) => connection,
            Link::Cluster(connection) => connection.as_mut(),
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
/// Every key of a location carries it as a cluster hash tag (`{shop}`), so
/// a reservation's keys share one slot and, on a cluster, one node; and
/// every key expires by itself (window end plus a grace period), so nothing
/// needs cleaning.
///
/// Calls are blocking (the [`CapacityStore`] trait is synchronous), over a
/// small pool of connections with connect and I/O timeouts. A connection
/// that fails is dropped and a fresh one opened on the next call, so the
/// store recovers by itself when Redis returns; errors become
/// [`StoreError`]s, never panics or hangs. On a cluster, a node that cannot
/// be reached fails only the calls whose keys it serves.
pub struct RedisStore {
    client: Client,
    config: RedisConfig,
    script: Script,
    idle: Mutex<Vec<Link>>,
    /// Live state (docs/live-state.md), shared with the poller thread.
    live: std::sync::Arc<LiveShared>,
}

/// The live-state cache and whether its poller runs.
#[derive(Default)]
struct LiveShared {
    cache: std::sync::RwLock<LiveCache>,
    poller: std::sync::OnceLock<()>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("target", &self.config.target()).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config`. Checks the URLs (and the CA certificates) but
    /// does not connect: a service starts while Redis is down and connects
    /// when it comes up (see [`CapacityStore::ping`]).
    pub fn open(config: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = if config.cluster.is_empty() {
            Client::Single(single_client(&config)?)
        } else {
            Client::Cluster(cluster_client(&config)?)
        };
        Ok(RedisStore {
            client,
            config,
            script: Script::new(SCRIPT),
            idle: Mutex::default(),
            live: std::sync::Arc::default(),
        })
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

    fn idle(&self) -> MutexGuard<'_, Vec<Link>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connect(&self) -> Result<Link, StoreError> {
        match &self.client {
            Client::Single(client) => {
                let connection =
                    client.get_connection_with_timeout(self.config.connect_timeout).map_err(|e| self.error(e))?;
                connection.set_read_timeout(Some(self.config.io_timeout)).map_err(|e| self.error(e))?;
                connection.set_write_timeout(Some(self.config.io_timeout)).map_err(|e| self.error(e))?;
                Ok(Link::Single(connection))
            }
            Client::Cluster(client) => {
                client.get_connection().map(|c| Link::Cluster(Box::new(c))).map_err(|e| self.error(e))
            }
        }
    }

    fn put_back(&self, connection: Link) {
        let mut idle = self.idle();
        if idle.len() < self.config.max_idle {
            idle.push(connection);
        }
    }

    /// Runs `command` on a pooled connection (or a new one). A pooled
    /// connection found dead (Redis restarted) is replaced once by a fresh
    /// connection, and the other idle ones, probably dead too, are dropped.
    /// A timeout is never retried: Redis may have run the command.
    fn run<T>(&self, command: impl Fn(&mut dyn ConnectionLike) -> RedisResult<T>) -> Result<T, StoreError> {
        let pooled = self.idle().pop();
        let was_pooled = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect()?,
        };
        match command(connection.as_dyn()) {
            Ok(value) => {
                self.put_back(connection);
                Ok(value)
            }
            Err(error) if was_pooled && error.is_connection_dropped() && !error.is_timeout() => {
                drop(connection);
                self.idle().clear();
                let mut connection = self.connect()?;
                let value = command(connection.as_dyn()).map_err(|e| self.error(e))?;
                self.put_back(connection);
                Ok(value)
            }
            Err(error) => {
                // A reply error leaves a connection usable; a cluster
                // connection reconnects its nodes by itself.
                let broken = error.is_io_error() || error.is_timeout() || error.is_connection_dropped();
                if !broken || matches!(connection, Link::Cluster(_)) {
                    self.put_back(connection);
                }
                Err(self.error(error))
            }
        }
    }

    /// Runs the script with `keys` and `args`: `EVALSHA`, and `EVAL` of
    /// the whole text on a node that does not hold it yet (which then
    /// caches it). Both go to the node of the keys' slot; `SCRIPT LOAD`
    /// would go to every node of a cluster, and fail while one is down.
    fn eval(&self, keys: &[String], args: &[String]) -> Result<Vec<i64>, StoreError> {
        let call = |verb: &str, head: &str| {
            let mut command = redis::cmd(verb);
            command.arg(head).arg(keys.len()).arg(keys).arg(args);
            command
        };
        let by_hash = call("EVALSHA", self.script.get_hash());
        self.run(|connection| match by_hash.query(connection) {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                call("EVAL", SCRIPT).query(connection)
            }
            other => other,
        })
    }

    /// A [`StoreError`] for `error`, naming what was reached and, for the
    /// failures an operator fixes in rules.yaml (a refused password, an
    /// untrusted certificate), what to check.
    fn error(&self, error: RedisError) -> StoreError {
        let target = self.config.target();
        let text = error.to_string();
        if error.kind() == ErrorKind::AuthenticationFailed
            || text.contains("WRONGPASS")
            || text.contains("NOAUTH")
            || text.contains("NOPERM")
        {
            return StoreError::new(
                StoreErrorKind::Unavailable,
                format!("redis {target}: authentication failed ({text}); check the user and password in the URL"),
            );
        }
        if text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("CertNotValid") {
            return StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "redis {target}: the server's TLS certificate is not trusted ({text}); \
                     give its CA in `capacity.tls_ca_file`"
                ),
            );
        }
        store_error(error)
    }

    /// Runs the script in `mode` for `request`; the flat integer reply.
    fn script(&self, request: &ReservationRequest<'_>, mode: &str) -> Result<Vec<i64>, StoreError> {
        let windows = request.windows();
        let base = self.location_prefix(request.location);
        let mut keys = Vec::with_capacity(11);
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
                keys.push(format!("{subject}{}", span.key()));
            }
            let day = &windows[2].key()[1..];
            keys.push(format!("{subject}c{day}"));
            keys.push(format!("{subject}n{day}"));
        }
        let remember = match (request.remember, request.contact) {
            (Some(remember), Some(contact)) if mode == "reserve" => Some((remember, contact)),
            _ => None,
        };
        let mut args = Vec::with_capacity(7 + 8 * subjects.len());
        args.extend([
            mode.to_owned(),
            subjects.len().to_string(),
            if request.contact.is_some() { "1" } else { "0" }.to_owned(),
            request.contact.unwrap_or("").to_owned(),
        ]);
        match remember {
            Some((remember, contact)) => {
                let key = ConversationKey { location: request.location, channel: remember.channel, contact };
                keys.push(self.conversation_key(&key));
                let value = format!("{}:{}", expiry_ms(request.now, remember.ttl), request.instance);
                args.extend(["1".to_owned(), value, ttl_ms(remember.ttl).to_string()]);
            }
            None => args.extend(["0".to_owned(), String::new(), "0".to_owned()]),
        }
        for (_, _, limits) in &subjects {
            for limit in [limits.per_minute, limits.per_hour, limits.per_day, limits.contacts_per_day] {
                args.push(limit.map_or(-1, i64::from).to_string());
            }
            for (span, grace) in windows.iter().zip(GRACE) {
                args.push(key_ttl(span, request.now, grace).to_string());
            }
            args.push(key_ttl(&windows[2], request.now, GRACE[2]).to_string());
        }
        let reply = self.eval(&keys, &args)?;
        let expected = 5 + 5 * subjects.len();
        if reply.len() != expected {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                format!("the capacity script answered {} values, expected {expected}", reply.len()),
            ));
        }
        Ok(reply)
    }

    /// The hash of a location's live state: per instance, the last
    /// `instance_status` applied (`switchboard:{shop}:live`).
    fn live_key(&self, location: &str) -> String {
        let mut key = self.location_prefix(location);
        key.push_str("live");
        key
    }

    /// An instance's field of health in the live hash: `h:<id>` (an escaped
    /// id has no `:`, so it never meets a status field), and the sorted sets
    /// of its recent deliveries and failures (`switchboard:{shop}:dlv:wa-1`,
    /// `…:fail:wa-1`).
    fn health_keys(&self, location: &str, instance: &str) -> (String, String, String) {
        let mut escaped = String::new();
        escape_into(&mut escaped, instance);
        let prefix = self.location_prefix(location);
        (format!("h:{escaped}"), format!("{prefix}dlv:{escaped}"), format!("{prefix}fail:{escaped}"))
    }

    /// Tells the fleet that `location` has live state and that it changed:
    /// every process reads it again (fleet-wide keys live in another slot
    /// of a cluster, hence a round trip of their own).
    fn announce_live(&self, location: &str) -> Result<(), StoreError> {
        // (Two commands, not a pipeline: a cluster connection takes none.)
        let (epoch_key, locations_key) = self.fleet_keys();
        self.run(|c| redis::cmd("SADD").arg(&locations_key).arg(location).query::<()>(c))?;
        self.run(|c| redis::cmd("INCR").arg(&epoch_key).query::<()>(c))?;
        // This process sees its own event at once.
        let _ = self.refresh_live();
        Ok(())
    }

    /// The fleet's live epoch (bumped by every applied event) and the set of
    /// locations with live state: fleet-wide keys, sharing one hash tag
    /// (`switchboard:{live}:epoch`, `switchboard:{live}:locations`).
    fn fleet_keys(&self) -> (String, String) {
        let base = format!("{}{{live}}:", self.config.key_prefix);
        (format!("{base}epoch"), format!("{base}locations"))
    }

    /// Reads the fleet's epoch and, when it moved, the set of locations
    /// with live state (dropping the states read under the old epoch).
    fn refresh_live(&self) -> Result<(), StoreError> {
        self.refresh_into(&self.live)
    }

    /// [`RedisStore::refresh_live`] into the cache of `live` (the poller's
    /// own handle refreshes the store's cache).
    fn refresh_into(&self, live: &LiveShared) -> Result<(), StoreError> {
        let (epoch_key, locations_key) = self.fleet_keys();
        let epoch: Option<i64> = self.run(|c| redis::cmd("GET").arg(&epoch_key).query(c))?;
        let epoch = epoch.unwrap_or(0);
        if live.cache.read().unwrap_or_else(|p| p.into_inner()).epoch == Some(epoch) {
            return Ok(());
        }
        let locations: Vec<String> = self.run(|c| redis::cmd("SMEMBERS").arg(&locations_key).query(c))?;
        let mut cache = live.cache.write().unwrap_or_else(|p| p.into_inner());
        *cache =
            LiveCache { epoch: Some(epoch), locations: locations.into_iter().collect(), states: Default::default() };
        Ok(())
    }

    fn live_cache(&self) -> std::sync::RwLockReadGuard<'_, LiveCache> {
        self.live.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (once) the thread that keeps the live cache current: it polls
    /// the fleet's epoch every [`LIVE_POLL`] and ends when the store is
    /// dropped. The first refresh happens here, so a process sees the
    /// fleet's state (a restart included) from its first decision.
    fn watch_live(&self) {
        self.live.poller.get_or_init(|| {
            let _ = self.refresh_live();
            let weak = std::sync::Arc::downgrade(&self.live);
            let poller = self.clone_handle();
            let spawned = std::thread::Builder::new().name("switchboard-live".into()).spawn(move || loop {
                std::thread::sleep(LIVE_POLL);
                let Some(live) = weak.upgrade() else { return };
                // An error keeps what is known; the next poll tries again.
                let _ = poller.refresh_into(&live);
            });
            // Without the thread (the system refused it) the cache stays as
            // first read; events applied here still refresh it.
            drop(spawned);
        });
    }

    /// A handle on the same Redis with its own connections and no live
    /// state of its own.
    fn clone_handle(&self) -> RedisStore {
        RedisStore {
            client: self.client.clone(),
            config: self.config.clone(),
            script: Script::new(SCRIPT),
            idle: Mutex::default(),
            live: std::sync::Arc::default(),
        }
    }

    /// The contact's last inbound message on a channel
    /// (`switchboard:{shop}:in:whatsapp:c-7`).
    fn inbound_key(&self, key: &ConversationKey<'_>) -> String {
        let mut redis_key = self.location_prefix(key.location);
        redis_key.push_str("in:");
        escape_into(&mut redis_key, key.channel);
        redis_key.push(':');
        escape_into(&mut redis_key, key.contact);
        redis_key
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

    /// On a cluster, every node is asked: the store is healthy when every
    /// slot answers.
    fn ping(&self) -> Result<(), StoreError> {
        self.run(|connection| redis::cmd("PING").query::<()>(connection))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn outlives_process(&self) -> bool {
        true
    }

    // Live state: a hash per location in Redis (so it survives restarts and
    // is the same for every process), and in each process a cache that a
    // poller thread keeps current through the fleet's epoch, so that a
    // decision asks Redis nothing until the location has live state, and
    // then once per epoch.

    fn has_live_state(&self, location: &str) -> bool {
        self.watch_live();
        self.live_cache().locations.contains(location)
    }

    fn live_state(&self, location: &str) -> Result<LiveState, StoreError> {
        self.watch_live();
        let epoch = {
            let cache = self.live_cache();
            if let Some(state) = cache.states.get(location) {
                return Ok(state.clone());
            }
            cache.epoch
        };
        let key = self.live_key(location);
        let fields: Vec<(String, String)> = self.run(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let mut overrides = Vec::new();
        let mut health = Vec::new();
        let bad =
            |value: &str| StoreError::new(StoreErrorKind::Protocol, format!("live state `{key}` holds `{value}`"));
        for (field, value) in fields {
            if field.starts_with(':') {
                continue;
            }
            if let Some(instance) = field.strip_prefix("h:") {
                let record = HealthRecord::decode(&value).ok_or_else(|| bad(&value))?;
                if record.in_cycle() {
                    health.push((unescape(instance), record));
                }
            } else if let Some(status) = parse_override(&value).ok_or_else(|| bad(&value))? {
                overrides.push((unescape(&field), status));
            }
        }
        overrides.sort_by(|a, b| a.0.cmp(&b.0));
        health.sort_by(|a, b| a.0.cmp(&b.0));
        let state = LiveState { overrides, health };
        let mut cache = self.live.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.epoch == epoch {
            cache.states.insert(location.to_owned(), state.clone());
        }
        Ok(state)
    }

    fn record_inbound(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        time: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let conversation = self.conversation_key(key);
        let inbound = self.inbound_key(key);
        let value = format!("{}:{instance}", expiry_ms(time, ttl));
        let script = Script::new(INBOUND_SCRIPT);
        let changed: i64 = self.run(|c| {
            script
                .key(&conversation)
                .key(&inbound)
                .arg(instance)
                .arg(time.as_millisecond())
                .arg(ttl_ms(ttl))
                .arg(&value)
                .arg(ttl_ms(INBOUND_KEPT))
                .invoke(c)
        })?;
        Ok(changed == 1)
    }

    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<(String, Timestamp)>, StoreError> {
        let redis_key = self.inbound_key(key);
        let value: Option<String> = self.run(|c| redis::cmd("GET").arg(&redis_key).query(c))?;
        let Some(value) = value else { return Ok(None) };
        let bad = || StoreError::new(StoreErrorKind::Protocol, format!("last inbound `{redis_key}` holds `{value}`"));
        let (ms, instance) = value.split_once(':').ok_or_else(bad)?;
        let time = ms.parse::<i64>().ok().and_then(|ms| Timestamp::from_millisecond(ms).ok()).ok_or_else(bad)?;
        Ok(Some((instance.to_owned(), time)))
    }

    fn live_locations(&self) -> Result<Vec<String>, StoreError> {
        // As the poller last read them (current within `LIVE_POLL`).
        self.watch_live();
        let mut locations: Vec<String> = self.live_cache().locations.iter().cloned().collect();
        locations.sort();
        Ok(locations)
    }

    fn apply_status(&self, update: &StatusUpdate<'_>) -> Result<bool, StoreError> {
        let time = update.time.as_millisecond();
        let value = match update.set {
            // `<time>:<connected 0|1>:<until, or empty>:<r + reason, or empty>`
            Some((connected, reason, until)) => format!(
                "{time}:{}:{}:{}",
                u8::from(connected),
                until.map_or(String::new(), |u| u.as_millisecond().to_string()),
                reason.map_or(String::new(), |r| format!("r{r}")),
            ),
            // A clear: the time alone (later events are compared with it).
            None => format!("{time}:-"),
        };
        let key = self.live_key(update.location);
        let mut field = String::new();
        escape_into(&mut field, update.instance);
        let script = Script::new(STATUS_SCRIPT);
        let applied: i64 = self.run(|c| script.key(&key).arg(&field).arg(time).arg(&value).invoke(c))?;
        self.announce_live(update.location)?;
        Ok(applied == 1)
    }

    fn record_delivery(&self, update: &DeliveryUpdate<'_>, policy: &HealthPolicy) -> Result<Transition, StoreError> {
        let key = self.live_key(update.location);
        let (field, deliveries, failures) = self.health_keys(update.location, update.instance);
        let time = update.time.as_millisecond();
        let window = i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX);
        let from = time.saturating_sub(window);
        // The window's keys outlive it by a minute, for late events.
        let keep = window.saturating_add(60_000);
        let (read, commit) = (Script::new(DELIVERY_READ_SCRIPT), Script::new(DELIVERY_COMMIT_SCRIPT));
        for _ in 0..DELIVERY_ATTEMPTS {
            let (old, all, failed): (String, u64, u64) =
                self.run(|c| read.key(&key).key(&deliveries).key(&failures).arg(&field).arg(from).arg(time).invoke(c))?;
            let record = match old.as_str() {
                "" => HealthRecord::default(),
                text => HealthRecord::decode(text).ok_or_else(|| {
                    StoreError::new(StoreErrorKind::Protocol, format!("health `{field}` of `{key}` holds `{old}`"))
                })?,
            };
            let counts = WindowCounts { deliveries: all + 1, failures: failed + u64::from(update.failed) };
            let transition = record.deliver(policy, update.time, update.failed, counts);
            let written: i64 = self.run(|c| {
                commit
                    .key(&key)
                    .key(&deliveries)
                    .key(&failures)
                    .arg(&field)
                    .arg(&old)
                    .arg(transition.record.encode())
                    .arg(time)
                    .arg(if update.failed { "1" } else { "0" })
                    .arg(keep)
                    .invoke(c)
            })?;
            if written == 1 {
                if transition.quarantined || record.in_cycle() != transition.record.in_cycle() {
                    self.announce_live(update.location)?;
                }
                return Ok(transition);
            }
        }
        Err(StoreError::new(
            StoreErrorKind::Protocol,
            format!(
                "the health of `{}` changed under {DELIVERY_ATTEMPTS} attempts in a row; send the event again",
                update.instance
            ),
        ))
    }

    fn health(&self, location: &str, window: Duration, now: Timestamp) -> Result<HealthList, StoreError> {
        let key = self.live_key(location);
        let fields: Vec<(String, String)> = self.run(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let to = now.as_millisecond();
        let from = format!("({}", to.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX)));
        let mut out = Vec::new();
        for (field, value) in fields {
            let Some(escaped) = field.strip_prefix("h:") else { continue };
            let record = HealthRecord::decode(&value).ok_or_else(|| {
                StoreError::new(StoreErrorKind::Protocol, format!("live state `{key}` holds `{value}`"))
            })?;
            let instance = unescape(escaped);
            let (_, deliveries, failures) = self.health_keys(location, &instance);
            let count = |key: &str| -> Result<u64, StoreError> {
                self.run(|c| redis::cmd("ZCOUNT").arg(key).arg(&from).arg(to).query(c))
            };
            let (all, failed) = (count(&deliveries)?, count(&failures)?);
            out.push((instance, record, WindowCounts { deliveries: all, failures: failed }));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The client of one server; a `rediss://` URL with a CA file trusts
/// that CA.
fn single_client(config: &RedisConfig) -> Result<redis::Client, StoreError> {
    let bad_url =
        |e: RedisError| StoreError::new(StoreErrorKind::Config, format!("redis_url `{}`: {e}", redact(&config.url)));
    match &config.tls_ca_pem {
        Some(pem) if config.url.starts_with("rediss://") => {
            let info = config.url.as_str().into_connection_info().map_err(bad_url)?;
            redis::Client::build_with_tls(info, certificates(pem)).map_err(bad_url)
        }
        _ => redis::Client::open(config.url.as_str()).map_err(bad_url),
    }
}

/// The client of a cluster: slots discovered from any seed, few and short
/// retries (a decision waits on them), the same timeouts as one server.
fn cluster_client(config: &RedisConfig) -> Result<ClusterClient, StoreError> {
    let seeds = config.cluster.iter().map(String::as_str).collect::<Vec<_>>();
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.io_timeout)
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if let Some(pem) = &config.tls_ca_pem {
        builder = builder.certs(certificates(pem));
    }
    builder
        .build()
        .map_err(|e| StoreError::new(StoreErrorKind::Config, format!("redis_cluster [{}]: {e}", config.target())))
}

fn certificates(pem: &[u8]) -> TlsCertificates {
    TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) }
}

/// An instance's value in a location's live hash, as
/// [`RedisStore::apply_status`] writes it: `Some(None)` for a clear, `None`
/// when it cannot be read.
fn parse_override(value: &str) -> Option<Option<StatusOverride>> {
    let mut parts = value.splitn(4, ':');
    let time = Timestamp::from_millisecond(parts.next()?.parse().ok()?).ok()?;
    let connected = match parts.next()? {
        "-" => return Some(None),
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let until = match parts.next()? {
        "" => None,
        ms => Some(Timestamp::from_millisecond(ms.parse().ok()?).ok()?),
    };
    let reason = match parts.next()? {
        "" => None,
        r => Some(r.strip_prefix('r')?.to_owned()),
    };
    Some(Some(StatusOverride { connected, reason, time, until }))
}

/// The id [`escape_into`] escaped.
fn unescape(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
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
    fn live_values_read_back_and_ids_unescape() {
        let t = Timestamp::from_millisecond(1_700_000_000_000).unwrap();
        let o = parse_override("1700000000000:0:1700000060000:rlogged: out").unwrap().unwrap();
        assert_eq!((o.connected, o.reason.as_deref(), o.time), (false, Some("logged: out"), t));
        assert_eq!(o.until.map(|u| u.as_millisecond()), Some(1_700_000_060_000));
        let o = parse_override("1700000000000:1::").unwrap().unwrap();
        assert_eq!((o.connected, o.reason, o.until), (true, None, None));
        assert_eq!(parse_override("1700000000000:-"), Some(None));
        assert_eq!(parse_override("x:1::"), None);
        let mut key = String::new();
        escape_into(&mut key, "a}:i:{b%");
        assert_eq!(unescape(&key), "a}:i:{b%");
    }

    #[test]
    fn a_malformed_url_is_a_config_error() {
        let config = RedisConfig { url: "not a url".to_owned(), ..RedisConfig::default() };
        let error = RedisStore::open(config).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Config);
    }
}
