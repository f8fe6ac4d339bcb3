//! The sandbox: one process-wide wasmtime [`Engine`] with epoch
//! interruption (a ticker thread advances the epoch every millisecond), and
//! [`Guest`], one instance of a module in its own [`Store`] with a memory
//! cap, whose every call runs under the module's time budget.
//!
//! A call that fails leaves its guest in an unknown state: callers drop
//! such a guest and instantiate a fresh one for the next call (see
//! [`Fault::spoils`]).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, Instance, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc};

/// How often the ticker advances the epoch: the resolution of `timeout_ms`.
const TICK: Duration = Duration::from_millis(1);

/// The engine every module is compiled for, with its ticker started.
pub(crate) fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine = Engine::new(&config).map_err(|e| format!("cannot start the WebAssembly engine: {e}"))?;
            let ticking = engine.clone();
            // The epoch counts the milliseconds since the engine started:
            // a tick the ticker was late for (a loaded machine) is made up
            // when it wakes, so budgets do not stretch with its delays.
            std::thread::Builder::new()
                .name("switchboard-wasm-epoch".into())
                .spawn(move || {
                    let started = std::time::Instant::now();
                    let mut epoch: u128 = 0;
                    loop {
                        std::thread::sleep(TICK);
                        let now = started.elapsed().as_millis();
                        while epoch < now {
                            ticking.increment_epoch();
                            epoch += 1;
                        }
                    }
                })
                .map_err(|e| format!("cannot start the WebAssembly timer thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The limits of one module's instances (`max_memory_mb`, `timeout_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The cap on linear memory, in bytes.
    pub(crate) memory_bytes: usize,
    /// The budget of one call, in epoch ticks (milliseconds).
    pub(crate) timeout_ms: u32,
}

/// What a store's limiter saw: a memory growth past the cap is refused
/// (the guest's `memory.grow` answers -1) and remembered, so that the call
/// is reported as `plugin_out_of_memory` whatever the guest did next.
struct Limiter {
    memory_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references: a generous cap, but a cap.
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// Why a call into a guest did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// It trapped (the wasmtime message).
    Trap(String),
    /// It ran past its budget.
    Timeout,
    /// It tried to grow memory past the cap.
    OutOfMemory,
    /// It answered something the ABI does not allow.
    Invalid(String),
}

impl Fault {
    /// The kind a consultation that met this fault fails with.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Fault::Trap(_) => "plugin_trap",
            Fault::Timeout => "plugin_timeout",
            Fault::OutOfMemory => "plugin_out_of_memory",
            Fault::Invalid(_) => "plugin_invalid_answer",
        }
    }

    /// Whether the guest may be in a broken state after this fault (so it
    /// must not be used again). An invalid answer came back normally, from
    /// an intact instance.
    pub(crate) fn spoils(&self) -> bool {
        !matches!(self, Fault::Invalid(_))
    }

    /// The fault as a sentence completing "… <rule> ", with `limits` for
    /// the budget and cap.
    pub(crate) fn describe(&self, limits: &Limits) -> String {
        match self {
            Fault::Trap(why) => format!("trapped ({why})"),
            Fault::Timeout => format!("ran past its budget of {} ms (timeout_ms) and was stopped", limits.timeout_ms),
            Fault::OutOfMemory => format!(
                "tried to grow its memory past {} MiB (max_memory_mb) and was refused",
                limits.memory_bytes >> 20
            ),
            Fault::Invalid(why) => why.clone(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// The exports of ABI 1 that a guest is called through.
struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    configure: TypedFunc<(i32, i32, i32), i32>,
    select: TypedFunc<(i32, i32, i32), i64>,
    error: TypedFunc<(), i64>,
    abi_version: TypedFunc<(), i32>,
    manifest: TypedFunc<(), i64>,
}

/// One instance of a module, in its own store.
pub(crate) struct Guest {
    store: Store<Limiter>,
    exports: Exports,
    limits: Limits,
}

impl Guest {
    /// Instantiates `module` (its start function, if any, runs under the
    /// budget). The module's exports were checked when it was loaded.
    pub(crate) fn new(engine: &Engine, module: &Module, limits: Limits) -> Result<Guest, Fault> {
        let mut store = Store::new(engine, Limiter { memory_bytes: limits.memory_bytes, denied: false });
        store.limiter(|l| l);
        store.set_epoch_deadline(u64::from(limits.timeout_ms));
        let outcome = Instance::new(&mut store, module, &[]);
        let instance = outcome.map_err(|e| fault(&store, &e))?;
        let missing = |name: &str| Fault::Invalid(format!("does not export `{name}` as ABI 1 requires"));
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| missing("memory"))?;
        let exports = Exports {
            memory,
            alloc: typed(&instance, &mut store, "sb_alloc")?,
            configure: typed(&instance, &mut store, "sb_configure")?,
            select: typed(&instance, &mut store, "sb_select")?,
            error: typed(&instance, &mut store, "sb_error")?,
            abi_version: typed(&instance, &mut store, "sb_abi_version")?,
            manifest: typed(&instance, &mut store, "sb_manifest")?,
        };
        Ok(Guest { store, exports, limits })
    }

    /// `sb_abi_version()`.
    pub(crate) fn abi_version(&mut self) -> Result<i32, Fault> {
        call(&mut self.store, self.limits, &self.exports.abi_version, ())
    }

    /// `sb_manifest()`: the manifest's text.
    pub(crate) fn manifest(&mut self) -> Result<String, Fault> {
        let ptr_len = call(&mut self.store, self.limits, &self.exports.manifest, ())?;
        self.read(ptr_len, "sb_manifest")
    }

    /// `sb_error()`: the text of the last refusal or failure.
    pub(crate) fn error(&mut self) -> Result<String, Fault> {
        let ptr_len = call(&mut self.store, self.limits, &self.exports.error, ())?;
        self.read(ptr_len, "sb_error")
    }

    /// Copies `bytes` into a buffer from `sb_alloc`; its pointer.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<i32, Fault> {
        let len = i32::try_from(bytes.len()).map_err(|_| Fault::Invalid("got an input over 2 GiB".into()))?;
        let ptr = call(&mut self.store, self.limits, &self.exports.alloc, len)?;
        let start = usize::try_from(ptr).ok();
        let memory = self.exports.memory;
        let target = start.and_then(|s| memory.data_mut(&mut self.store).get_mut(s..s.checked_add(bytes.len())?));
        match target {
            Some(target) => {
                target.copy_from_slice(bytes);
                Ok(ptr)
            }
            None => Err(Fault::Invalid(format!(
                "answered `sb_alloc({len})` with {ptr}, which is not a buffer of {len} bytes inside its memory ({} bytes)",
                memory.data_size(&self.store)
            ))),
        }
    }

    /// `sb_configure(rule, options)`: the handle, or the refusal (`Ok(Err(sb_error's text))`).
    pub(crate) fn configure(&mut self, rule: i32, options: &[u8]) -> Result<Result<i32, String>, Fault> {
        let ptr = self.write(options)?;
        let len = i32::try_from(options.len()).unwrap_or(i32::MAX);
        let handle = call(&mut self.store, self.limits, &self.exports.configure, (rule, ptr, len))?;
        if handle >= 0 {
            return Ok(Ok(handle));
        }
        Ok(Err(self.error()?))
    }

    /// `sb_select(handle, input)`: the raw answer.
    pub(crate) fn select(&mut self, handle: i32, input: &[u8]) -> Result<i64, Fault> {
        let ptr = self.write(input)?;
        let len = i32::try_from(input.len()).unwrap_or(i32::MAX);
        call(&mut self.store, self.limits, &self.exports.select, (handle, ptr, len))
    }

    /// The UTF-8 text at `ptr_len` (`(ptr << 32) | len`) in the guest's memory.
    fn read(&self, ptr_len: i64, what: &str) -> Result<String, Fault> {
        let bits = ptr_len.cast_unsigned();
        let (ptr, len) = ((bits >> 32) as usize, (bits & 0xffff_ffff) as usize);
        let data = self.exports.memory.data(&self.store);
        let bytes = ptr.checked_add(len).and_then(|end| data.get(ptr..end)).ok_or_else(|| {
            Fault::Invalid(format!(
                "answered `{what}` with {len} bytes at {ptr}, outside its memory ({} bytes)",
                data.len()
            ))
        })?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Fault::Invalid(format!("answered `{what}` with text that is not UTF-8")))
    }
}

/// Runs one call of `f` under the budget and the cap. (The exports are
/// borrowed, not cloned: a [`TypedFunc`]'s clone registers its type again.)
fn call<P, R>(store: &mut Store<Limiter>, limits: Limits, f: &TypedFunc<P, R>, params: P) -> Result<R, Fault>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    store.data_mut().denied = false;
    store.set_epoch_deadline(u64::from(limits.timeout_ms));
    let outcome = f.call(&mut *store, params);
    if store.data().denied {
        return Err(Fault::OutOfMemory);
    }
    outcome.map_err(|e| fault(store, &e))
}

fn typed<P, R>(instance: &Instance, store: &mut Store<Limiter>, name: &str) -> Result<TypedFunc<P, R>, Fault>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    instance
        .get_typed_func::<P, R>(store, name)
        .map_err(|e| Fault::Invalid(format!("its export `{name}` does not have ABI 1's signature: {e}")))
}

/// The fault of a failed call or instantiation.
fn fault(store: &Store<Limiter>, error: &wasmtime::Error) -> Fault {
    if store.data().denied {
        return Fault::OutOfMemory;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Timeout,
        Some(trap) => Fault::Trap(trap.to_string()),
        None => Fault::Trap(format!("{error:#}")),
    }
}
