//! Node.js binding of the Switchboard engine (docs/bindings.md), built with napi-rs.
//!
//! Glue only: every decision, explain table, status and diagnostic comes
//! from the `switchboard` crate as its JSON text or `serde_json::Value`.
//! `index.js` wraps this native class: it turns request objects into JSON
//! text (`JSON.stringify`) and decisions back into objects (`JSON.parse`),
//! so `select(obj)` and `selectJson(text)` run the exact same path as one
//! line of `switchboard select`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use napi::threadsafe_function::{ErrorStrategy, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsFunction, JsUnknown, Status};
use napi_derive::napi;
use switchboard::{embed, report, Live, LoadErrors, Watch};

/// A reload listener: a JS function callable from any thread.
type Listener = ThreadsafeFunction<String, ErrorStrategy::Fatal>;

/// Locks a mutex, going on with the data if a thread panicked holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where `Engine.open` finds its files.
#[napi(object)]
pub struct OpenOptions {
    /// Path of rules.yaml (relative to the process's working directory).
    pub rules: String,
    /// Path of the world file, if any.
    pub world: Option<String>,
    /// Watch both files and reload when they change (docs/library.md).
    pub watch: Option<bool>,
}

/// The state shared with the thread that forwards reload events.
#[derive(Default)]
struct Listeners {
    /// The functions registered with `onReload`.
    functions: Vec<Listener>,
    /// Whether the forwarding thread runs.
    forwarding: bool,
}

/// What keeps Node's event loop alive while the engine watches its files
/// (as `fs.watch` does): a referenced thread-safe function never called.
type KeepAlive = ThreadsafeFunction<(), ErrorStrategy::Fatal>;

/// The watcher and what keeps the process alive while it runs.
struct Watching {
    _watch: Watch,
    _alive: KeepAlive,
}

/// The native engine (`index.js` wraps it as `Engine`).
#[napi]
pub(crate) struct NativeEngine {
    live: Live,
    watching: Mutex<Option<Watching>>,
    listeners: Arc<Mutex<Listeners>>,
}

/// A thrown `Error` whose message lists every problem and whose
/// `diagnostics` is the array of `{file, line, column, message}`.
fn config_error(env: &Env, errors: &LoadErrors) -> napi::Error {
    let throw = || -> napi::Result<()> {
        let mut error = env.create_error(napi::Error::from_reason(errors.to_string()))?;
        let mut diagnostics = env.create_array_with_length(0)?;
        for (i, (file, d)) in (0u32..).zip(errors.diagnostics()) {
            let mut item = env.create_object()?;
            item.set_named_property("file", env.create_string(file)?)?;
            let position = |n: Option<usize>| -> napi::Result<JsUnknown> {
                match n.and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => Ok(env.create_uint32(n)?.into_unknown()),
                    None => Ok(env.get_null()?.into_unknown()),
                }
            };
            item.set_named_property("line", position(d.line)?)?;
            item.set_named_property("column", position(d.column)?)?;
            item.set_named_property("message", env.create_string(&d.message)?)?;
            diagnostics.set_element(i, item)?;
        }
        error.set_named_property("diagnostics", diagnostics)?;
        env.throw(error)
    };
    match throw() {
        // The exception is pending; napi-rs does not throw a second one.
        Ok(()) => napi::Error::new(Status::PendingException, errors.to_string()),
        Err(e) => e,
    }
}

/// Runs `f`, turning a Rust panic into a thrown JS `Error`.
fn guarded<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(napi::Error::from_reason(format!("switchboard: internal error in {what}: {why}")))
    })
}

#[napi]
impl NativeEngine {
    /// Loads the rules (plugins included) and world files; throws an
    /// `Error` carrying the located diagnostics when either is invalid.
    #[napi(factory)]
    pub fn open(env: Env, options: OpenOptions) -> napi::Result<NativeEngine> {
        let opened = guarded("open", || {
            let registry = switchboard::registry().map_err(|e| napi::Error::from_reason(e.to_string()))?;
            Ok(Live::open(registry, &options.rules, options.world.as_deref()))
        })?;
        let live = opened.map_err(|errors| config_error(&env, &errors))?;
        let watching = if options.watch.unwrap_or(false) {
            let watch = live.watch().map_err(|e| {
                napi::Error::from_reason(format!(
                    "cannot watch {}: {e}",
                    live.paths().next().map_or_else(String::new, |p| p.display().to_string())
                ))
            })?;
            let alive: KeepAlive = env
                .create_function_from_closure("switchboardWatching", |_| Ok(()))?
                .create_threadsafe_function(0, |_: napi::threadsafe_function::ThreadSafeCallContext<()>| {
                    Ok(Vec::<JsUnknown>::new())
                })?;
            Some(Watching { _watch: watch, _alive: alive })
        } else {
            None
        };
        Ok(NativeEngine { live, watching: Mutex::new(watching), listeners: Arc::default() })
    }

    /// One decision for one request text, as decision JSON text; never throws for
    /// a request it cannot use (that is the code-100 decision).
    #[napi]
    pub fn select_json(&self, request: String) -> napi::Result<String> {
        guarded("selectJson", || Ok(embed::select_text(&self.live, &request)))
    }

    /// The decisions for several request texts, in order, all on one
    /// configuration (`selectMany` in `index.js`).
    #[napi]
    pub fn select_many_json(&self, requests: Vec<String>) -> napi::Result<Vec<String>> {
        guarded("selectMany", || Ok(embed::select_many_text(&self.live, requests.iter().map(String::as_str))))
    }

    /// The code-100 decision (JSON text) for a request that is not even
    /// JSON-encodable (`index.js` passes the reason).
    #[napi]
    pub fn request_error(&self, reason: String) -> String {
        switchboard::Decision::request_error(
            switchboard::ErrorKind::InvalidRequest,
            format!("cannot read the request: {reason}"),
            None,
        )
        .to_json()
    }

    /// The explain table of one request text.
    #[napi]
    pub fn explain(&self, request: String) -> napi::Result<String> {
        guarded("explain", || Ok(embed::explain_text(&self.live, &request)))
    }

    /// Erases the conversation memory of one contact on one channel
    /// (docs/capacity.md, `conversation`); whether there was one. Throws when the
    /// capacity store cannot answer.
    #[napi]
    pub fn forget(&self, location: String, channel: String, contact: String) -> napi::Result<bool> {
        guarded("forget", || {
            self.live
                .forget(&location, &channel, &contact)
                .map_err(|e| napi::Error::from_reason(format!("switchboard: cannot forget: {e}")))
        })
    }

    /// Applies events from the send path (docs/live-state.md): one event or JSON
    /// Lines text in, `{"accepted", "rejected"}` as JSON text out.
    #[napi]
    pub fn record_json(&self, events: String) -> napi::Result<String> {
        guarded("record", || Ok(self.live.record(&events).to_json().to_string()))
    }

    /// The live state of a location's instances (docs/live-state.md, the
    /// `/v1/instances` object) as JSON text; `null` when the world in force
    /// has no such location.
    #[napi]
    pub fn instances_json(&self, location: String) -> napi::Result<Option<String>> {
        guarded("instances", || Ok(self.live.instances(&location).map(|v| v.to_string())))
    }

    /// The status object (`GET /v1/status`), as JSON text.
    #[napi]
    pub fn status_json(&self) -> napi::Result<String> {
        guarded("status", || Ok(report::status_json(&self.live.status()).to_string()))
    }

    /// Reloads now; returns the reload event as JSON text, or throws the
    /// located diagnostics (the last good configuration stays).
    #[napi]
    pub fn reload(&self, env: Env) -> napi::Result<String> {
        let outcome = guarded("reload", || Ok(self.live.try_reload()))?;
        match outcome {
            Ok(event) => Ok(embed::event_json(&event).to_string()),
            Err(errors) => Err(config_error(&env, &errors)),
        }
    }

    /// Calls `callback(eventJson)` on Node's event loop after every reload
    /// attempt. A listener itself never keeps the process alive
    /// (unreferenced); watching does, until `close()`.
    #[napi]
    pub fn on_reload(&self, env: Env, callback: JsFunction) -> napi::Result<()> {
        let mut listener: Listener = callback
            .create_threadsafe_function(0, |cx: napi::threadsafe_function::ThreadSafeCallContext<String>| {
                Ok(vec![cx.env.create_string(&cx.value)?])
            })?;
        listener.unref(&env)?;
        let mut listeners = lock(&self.listeners);
        listeners.functions.push(listener);
        if !listeners.forwarding {
            let events = self.live.subscribe();
            let shared = Arc::clone(&self.listeners);
            std::thread::Builder::new()
                .name("switchboard-node-events".into())
                .spawn(move || {
                    // Ends when the engine (the event sender) is dropped.
                    for event in events {
                        let text = embed::event_json(&event).to_string();
                        for f in &lock(&shared).functions {
                            f.call(text.clone(), ThreadsafeFunctionCallMode::NonBlocking);
                        }
                    }
                })
                .map_err(|e| napi::Error::from_reason(format!("cannot start the event thread: {e}")))?;
            listeners.forwarding = true;
        }
        Ok(())
    }

    /// Stops watching (joins the watcher's thread), releases the reload
    /// listeners and so lets the process exit. Selection still works on the
    /// configuration in force.
    #[napi]
    pub fn close(&self) {
        drop(lock(&self.watching).take());
        lock(&self.listeners).functions.clear();
    }
}
