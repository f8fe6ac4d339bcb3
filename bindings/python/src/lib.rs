//! Python binding of the Switchboard engine (docs/bindings.md), built with PyO3 and
//! maturin as an abi3 extension module (CPython ≥ 3.9).
//!
//! Glue only: requests reach the engine as JSON text (`json.dumps`, compact)
//! and decisions come back as the library's decision JSON (`json.loads`), so
//! `select(dict)` and `select_json(str)` run the exact same path as one line
//! of `switchboard select`. Selection runs with the GIL released.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use switchboard::{embed, report, Decision, ErrorKind, Live, LoadErrors, Watch};

pyo3::create_exception!(
    switchboard,
    ConfigError,
    PyException,
    "A rules or world file is invalid; `.diagnostics` lists every problem as {file, line, column, message}."
);

pyo3::create_exception!(
    switchboard,
    StoreError,
    PyException,
    "The capacity store (memory, or Redis when rules.yaml says `store: redis`) cannot answer."
);

/// Locks a mutex, going on with the data if a thread panicked holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f`, turning a Rust panic into a `RuntimeError` message.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("switchboard: internal error in {what}: {why}")
    })
}

/// Runs `f` without the GIL; a panic becomes a `RuntimeError`.
fn detached<T: Send>(py: Python<'_>, what: &str, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.allow_threads(|| guarded(what, f)).map_err(PyRuntimeError::new_err)
}

/// `encode` of a compact `json.JSONEncoder` (UTF-8 kept, as
/// `JSON.stringify` does) and `json.loads`; made once, both in C.
struct Json {
    encode: Py<PyAny>,
    loads: Py<PyAny>,
}

static JSON: GILOnceCell<Json> = GILOnceCell::new();

fn json(py: Python<'_>) -> PyResult<&Json> {
    JSON.get_or_try_init(py, || {
        let module = py.import("json")?;
        let options = PyDict::new(py);
        options.set_item("separators", (",", ":"))?;
        options.set_item("ensure_ascii", false)?;
        let encoder = module.getattr("JSONEncoder")?.call((), Some(&options))?;
        Ok(Json { encode: encoder.getattr("encode")?.unbind(), loads: module.getattr("loads")?.unbind() })
    })
}

/// The JSON text of a request value, or why it has none (a set, a cycle, …).
fn request_text(py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Result<String, String>> {
    Ok(match json(py)?.encode.bind(py).call1((request,)) {
        Ok(text) => text.extract::<String>().map_err(|e| format!("it is not valid Unicode: {}", e.value(py))),
        Err(e) => Err(format!("cannot encode it as JSON: {}", e.value(py))),
    })
}

/// Parses JSON text produced by the library into Python values.
fn loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    json(py)?.loads.bind(py).call1((text,))
}

/// The code-100 decision (JSON text) for a request with no JSON text.
fn unreadable(reason: &str) -> String {
    Decision::request_error(ErrorKind::InvalidRequest, format!("cannot read the request: {reason}"), None).to_json()
}

/// A `ConfigError` carrying every located problem in `.diagnostics`.
fn config_error(py: Python<'_>, errors: &LoadErrors) -> PyErr {
    let error = ConfigError::new_err(errors.to_string());
    match loads(py, &embed::diagnostics_json(errors).to_string()) {
        Ok(diagnostics) => match error.value(py).setattr("diagnostics", diagnostics) {
            Ok(()) => error,
            Err(e) => e,
        },
        Err(e) => e,
    }
}

/// Why `open` failed: invalid files, or something else (no watcher).
enum OpenError {
    Config(LoadErrors),
    Other(String),
}

/// One reloadable configuration: rules.yaml (plugins included) and the
/// world file, optionally watched.
#[pyclass(frozen, module = "switchboard")]
struct Engine {
    live: Live,
    watch: Mutex<Option<Watch>>,
}

#[pymethods]
impl Engine {
    /// Loads the files; raises `ConfigError` (with `.diagnostics`) when one
    /// is invalid. With `watch=True` the files are reloaded when they change.
    #[staticmethod]
    #[pyo3(signature = (rules, world = None, watch = false))]
    fn open(py: Python<'_>, rules: PathBuf, world: Option<PathBuf>, watch: bool) -> PyResult<Engine> {
        let opened = detached(py, "open", move || -> Result<(Live, Option<Watch>), OpenError> {
            let registry = switchboard::registry().map_err(|e| OpenError::Other(e.to_string()))?;
            let live = Live::open(registry, rules, world).map_err(OpenError::Config)?;
            let watching = match watch {
                true => Some(live.watch().map_err(|e| OpenError::Other(format!("cannot watch the files: {e}")))?),
                false => None,
            };
            Ok((live, watching))
        })?;
        match opened {
            Ok((live, watch)) => Ok(Engine { live, watch: Mutex::new(watch) }),
            Err(OpenError::Config(errors)) => Err(config_error(py, &errors)),
            Err(OpenError::Other(message)) => Err(PyRuntimeError::new_err(message)),
        }
    }

    /// One decision as a dict; a request it cannot use gets the
    /// code-100 decision, never an exception.
    fn select<'py>(&self, py: Python<'py>, request: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let decision = match request_text(py, request)? {
            Ok(text) => detached(py, "select", || embed::select_text(&self.live, &text))?,
            Err(reason) => unreadable(&reason),
        };
        loads(py, &decision)
    }

    /// One decision, JSON text in (`str`, or UTF-8 `bytes` as a web
    /// framework hands a body over), decision JSON text out (the fast path).
    fn select_json(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<String> {
        let text = if let Ok(text) = request.downcast::<PyString>() {
            text.extract::<String>().map_err(|e| format!("it is not valid Unicode: {}", e.value(py)))
        } else if let Ok(bytes) = request.downcast::<PyBytes>() {
            String::from_utf8(bytes.as_bytes().to_vec()).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                format!("it is not valid UTF-8 (first bad byte at offset {at})")
            })
        } else {
            let kind = request.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
            Err(format!("expected a JSON text (str or bytes), got {kind}"))
        };
        match text {
            Ok(text) => detached(py, "select_json", || embed::select_text(&self.live, &text)),
            Err(reason) => Ok(unreadable(&reason)),
        }
    }

    /// Decisions for a list of requests, in order, on one configuration
    /// per call (the GIL is released once for the whole batch).
    fn select_many<'py>(&self, py: Python<'py>, requests: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let mut texts: Vec<Result<String, String>> = Vec::new();
        for request in requests.try_iter()? {
            texts.push(request_text(py, &request?)?);
        }
        let decisions = detached(py, "select_many", || {
            // (A request that cannot be encoded is decided as `null`, then
            // given its own code-100 decision below.)
            let decided = embed::select_many_text(&self.live, texts.iter().map(|t| t.as_deref().unwrap_or("null")));
            texts
                .iter()
                .zip(decided)
                .map(|(t, decision)| match t {
                    Ok(_) => decision,
                    Err(reason) => unreadable(reason),
                })
                .collect::<Vec<String>>()
        })?;
        let out = PyList::empty(py);
        for decision in decisions {
            out.append(loads(py, &decision)?)?;
        }
        Ok(out)
    }

    /// The explain table of a request (dict or JSON text).
    fn explain(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<String> {
        let text = match request.downcast::<PyString>() {
            Ok(text) => text.extract::<String>().unwrap_or_else(|_| "null".to_owned()),
            Err(_) => request_text(py, request)?.unwrap_or_else(|_| "null".to_owned()),
        };
        detached(py, "explain", || embed::explain_text(&self.live, &text))
    }

    /// The status dict of `GET /v1/status` (`generation` is an int).
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let status = detached(py, "status", || report::status_json(&self.live.status()).to_string())?;
        loads(py, &status)
    }

    /// Erases the conversation memory (docs/capacity.md) of `contact` on `channel`
    /// at `location`; whether there was one. Raises `StoreError` when the
    /// capacity store cannot answer.
    fn forget(&self, py: Python<'_>, location: &str, channel: &str, contact: &str) -> PyResult<bool> {
        detached(py, "forget", || self.live.forget(location, channel, contact))?
            .map_err(|e| StoreError::new_err(format!("cannot forget: {e}")))
    }

    /// Applies events from the send path (docs/live-state.md): a dict, a list of
    /// dicts, or JSON Lines text (`str`); returns `{"accepted",
    /// "rejected": [{"line", "message"}]}` (`line` 1-based: the list
    /// position, or the text's line). An item that cannot be encoded as
    /// JSON is a rejected line saying why.
    fn record<'py>(&self, py: Python<'py>, events: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let line = |item: &Bound<'py, PyAny>| -> PyResult<String> {
            Ok(match request_text(py, item)? {
                Ok(text) => text,
                // A JSON string: a line the engine rejects, saying why.
                Err(reason) => json(py)?.encode.bind(py).call1((reason,))?.extract::<String>()?,
            })
        };
        let text = if let Ok(text) = events.downcast::<PyString>() {
            text.extract::<String>()?
        } else if let Ok(list) = events.downcast::<PyList>() {
            let mut lines = Vec::with_capacity(list.len());
            for item in list.iter() {
                lines.push(line(&item)?);
            }
            lines.join("\n")
        } else {
            line(events)?
        };
        let recorded = detached(py, "record", || self.live.record(&text).to_json().to_string())?;
        loads(py, &recorded)
    }

    /// The live state of a location's instances (docs/live-state.md, the
    /// `/v1/instances` object) as a dict; `None` when the world in force
    /// has no such location.
    fn instances<'py>(&self, py: Python<'py>, location: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let answer = detached(py, "instances", || self.live.instances(location).map(|v| v.to_string()))?;
        answer.map(|text| loads(py, &text)).transpose()
    }

    /// Reloads now; returns the event (`{"type": "reloaded" | "unchanged",
    /// "generation": n}`) or raises `ConfigError` (the last good
    /// configuration stays).
    fn reload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match detached(py, "reload", || self.live.try_reload())? {
            Ok(event) => loads(py, &embed::event_json(&event).to_string()),
            Err(errors) => Err(config_error(py, &errors)),
        }
    }

    /// Stops watching; selection keeps working on the configuration in force.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let watch = lock(&self.watch).take();
        // Dropping the watch joins its thread, which may be mid-reload.
        detached(py, "close", move || drop(watch))
    }

    /// `with Engine.open(...) as engine:` closes at the end of the block.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the engine (see `close`).
    fn __exit__(
        &self,
        py: Python<'_>,
        _type: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

/// Switchboard: which sender instance carries each outbound CRM message.
#[pymodule]
#[pyo3(name = "switchboard")]
fn switchboard_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("StoreError", m.py().get_type::<StoreError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
