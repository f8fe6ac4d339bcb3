//! The accept loop: hyper connections (HTTP/1.1 keep-alive with a header
//! read timeout, and HTTP/2 cleartext) serving the router, signals, and
//! graceful shutdown.

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::signal::unix::{signal, SignalKind};

use crate::routes::{app, State};
use crate::{LogFormat, ServeError, ServeOptions, DRAIN_TIMEOUT, STORE_CHECK_INTERVAL};

/// How long connections keep going after a shutdown signal before they
/// are told to close once their request is answered.
const SHUTDOWN_LINGER: std::time::Duration = std::time::Duration::from_millis(200);

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false);
    // A second `run` in one process keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Binds, prints the listening line, serves until SIGTERM/SIGINT, then
/// drains the connections.
pub(crate) async fn serve(addr: SocketAddr, state: State, options: &ServeOptions) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Listen { listen: options.listen.clone(), reason: format!("cannot listen: {e}") })?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError::Listen { listen: options.listen.clone(), reason: format!("cannot listen: {e}") })?;
    let runtime_err = |what: &str, e: std::io::Error| ServeError::Runtime(format!("cannot {what}: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(|e| runtime_err("handle SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| runtime_err("handle SIGINT", e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| runtime_err("handle SIGHUP", e))?;

    let events = state.live().subscribe();
    let on_event = state.clone();
    std::thread::Builder::new()
        .name("reload-events".into())
        .spawn(move || {
            for event in events {
                on_event.on_reload(&event);
            }
        })
        .map_err(|e| runtime_err("start the reload-event thread", e))?;
    let watch = state.live().watch().map_err(|e| ServeError::Runtime(format!("cannot watch the files: {e}")))?;
    let on_hup = state.live().clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let live = on_hup.clone();
            let _ = tokio::task::spawn_blocking(move || live.reload()).await;
        }
    });

    // The capacity store's health: a ping every STORE_CHECK_INTERVAL (off
    // the async workers), so `/v1/status` and `switchboard_store_up` follow
    // a store that goes down or comes back even without traffic.
    let checker = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STORE_CHECK_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            checker.check_store().await;
        }
    });

    // Everything is armed (watcher, signals): the first line on stderr,
    // before any log line, says so.
    eprintln!("switchboard: listening on http://{bound}");
    init_logging(options.log_format);

    let router = app(state.clone(), options.max_body_bytes, options.request_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let serve_connection = |stream: tokio::net::TcpStream| {
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    };
    let signal_name = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => serve_connection(stream),
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    // Stop accepting; connections the kernel already accepted are clients
    // that have sent their request: serve them too.
    while let Ok(Ok((stream, _peer))) = tokio::time::timeout(std::time::Duration::ZERO, listener.accept()).await {
        serve_connection(stream);
    }
    drop(listener);
    tracing::info!(
        signal = signal_name,
        "shutting down: {signal_name} received; finishing the requests in flight ({} connections)",
        graceful.count()
    );
    // A connection just accepted may not have parsed its request yet, and
    // hyper closes a connection that is idle when told to shut down: give
    // them a moment to start, then close each once its request is answered.
    tokio::time::sleep(SHUTDOWN_LINGER).await;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; exiting anyway");
        }
    }
    drop(watch);
    tracing::info!("stopped");
    Ok(())
}
