//! The service's Prometheus metrics (docs/service.md), kept in one
//! `prometheus-client` registry owned by the service (no global).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use switchboard::Decision;

/// Labels of `switchboard_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The request's channel, as registered (empty when the request could
    /// not be read or names no registered channel).
    pub channel: String,
    /// The deciding rule; empty for chain exhaustion and code 100.
    pub rule: String,
    /// `selected` or `error`.
    pub outcome: &'static str,
    /// The error code; for a selection, the code of the rule that selected.
    pub code: String,
}

/// Labels of `switchboard_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/v1/select`), or `unmatched`.
    pub route: String,
    /// The status code sent.
    pub status: u16,
}

/// Labels of `switchboard_config_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success`, `failure` or `unchanged`.
    pub result: &'static str,
}

/// Labels of `switchboard_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `instance_status`, `delivery`, `inbound`, or `unknown` for a line
    /// whose type cannot be read.
    pub r#type: &'static str,
    /// `accepted` or `rejected`.
    pub result: &'static str,
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `switchboard_decisions_total{channel,rule,outcome,code}`.
    pub decisions: Family<DecisionLabels, Counter>,
    /// `switchboard_decision_duration_seconds`: the selection alone.
    pub decision_duration: Histogram,
    /// `switchboard_http_requests_total{route,status}`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `switchboard_config_generation`.
    pub generation: Gauge,
    /// `switchboard_config_last_reload_successful` (0/1).
    pub last_reload_successful: Gauge,
    /// `switchboard_config_reloads_total{result}`.
    pub reloads: Family<ReloadLabels, Counter>,
    /// `switchboard_decision_log_dropped_total`: lines the decision log
    /// dropped because its writer was behind.
    pub log_dropped: Counter,
    /// `switchboard_store_up`: 1 while the capacity store of the
    /// configuration in force answers (its last call succeeded), else 0.
    pub store_up: Gauge,
    /// `switchboard_store_errors_total`: failed capacity store calls
    /// (reservations, reads, health checks).
    pub store_errors: Counter,
    /// `switchboard_events_total{type,result}`: events from the send path
    /// (docs/live-state.md).
    pub events: Family<EventLabels, Counter>,
    /// `switchboard_instance_quarantines_total`: quarantines started by the
    /// `delivery` events this process applied.
    pub instance_quarantines: Counter,
    /// `switchboard_instances_quarantined`: the instances quarantined now,
    /// in the state this process sees (fleet-wide with `store: redis`).
    pub instances_quarantined: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The metrics, registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "switchboard_decisions",
            "Decisions made by /v1/select and /v1/select/batch",
            decisions.clone(),
        );
        // 1 µs .. ~16 ms, doubling: a decision is microseconds.
        let decision_duration =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1e-6, 2.0, 15));
        registry.register(
            "switchboard_decision_duration_seconds",
            "Time spent selecting (the rule chain alone), in seconds",
            decision_duration.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "switchboard_http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let generation = Gauge::default();
        registry.register("switchboard_config_generation", "The configuration generation in force", generation.clone());
        let last_reload_successful = Gauge::default();
        registry.register(
            "switchboard_config_last_reload_successful",
            "1 if the last reload attempt succeeded (or none failed yet), else 0",
            last_reload_successful.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        // Every result from the start, at 0: a rate over them needs the series.
        for result in ["success", "failure", "unchanged"] {
            drop(reloads.get_or_create(&ReloadLabels { result }));
        }
        registry.register("switchboard_config_reloads", "Reload attempts, by result", reloads.clone());
        let log_dropped = Counter::default();
        registry.register(
            "switchboard_decision_log_dropped",
            "Decision-log lines dropped because the writer was behind",
            log_dropped.clone(),
        );
        let store_up = Gauge::default();
        store_up.set(1);
        registry.register(
            "switchboard_store_up",
            "1 while the capacity store in force answers (its last call succeeded), else 0",
            store_up.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "switchboard_store_errors",
            "Failed capacity store calls (reservations, reads, health checks)",
            store_errors.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register("switchboard_events", "Events from the send path, by type and result", events.clone());
        let instance_quarantines = Counter::default();
        registry.register(
            "switchboard_instance_quarantines",
            "Quarantines started by the delivery events this process applied",
            instance_quarantines.clone(),
        );
        let instances_quarantined = Gauge::default();
        registry.register(
            "switchboard_instances_quarantined",
            "Instances quarantined now, in the state this process sees",
            instances_quarantined.clone(),
        );
        Metrics {
            events,
            instance_quarantines,
            instances_quarantined,
            registry,
            decisions,
            decision_duration,
            http_requests,
            generation,
            last_reload_successful,
            reloads,
            log_dropped,
            store_up,
            store_errors,
        }
    }

    /// Counts one decision made on `channel`; `rule_code` finds the code of
    /// a selecting rule.
    pub fn count_decision(&self, channel: &str, decision: &Decision, rule_code: impl FnOnce(&str) -> Option<u32>) {
        let rule = decision.rule.unwrap_or("");
        let (outcome, code) = match &decision.result {
            Ok(_) => ("selected", rule_code(rule).map_or(String::new(), |c| c.to_string())),
            Err(e) => ("error", e.code.to_string()),
        };
        self.decisions
            .get_or_create(&DecisionLabels { channel: channel.to_owned(), rule: rule.to_owned(), outcome, code })
            .inc();
    }

    /// Counts what one `POST /v1/events` body did.
    pub fn count_events(&self, recorded: &switchboard::events::Recorded) {
        for event in &recorded.accepted {
            self.events.get_or_create(&EventLabels { r#type: event.kind.type_name(), result: "accepted" }).inc();
        }
        for (_, rejection) in &recorded.rejected {
            self.events.get_or_create(&EventLabels { r#type: rejection.type_name, result: "rejected" }).inc();
        }
        self.instance_quarantines.inc_by(recorded.quarantines);
    }

    /// Brings the store metrics up to date: `up` from the store's health,
    /// and the error counter to `errors_total` (a total that never
    /// decreases).
    pub fn sync_store(&self, up: bool, errors_total: u64) {
        self.store_up.set(i64::from(up));
        let seen = self.store_errors.get();
        if errors_total > seen {
            self.store_errors.inc_by(errors_total - seen);
        }
    }

    /// The OpenMetrics text exposition (`application/openmetrics-text`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The classic Prometheus text format (`text/plain; version=0.0.4`):
    /// the OpenMetrics text with counters' `# HELP`/`# TYPE` lines naming
    /// the `_total` series, and no `# EOF`.
    pub fn encode_classic(&self) -> String {
        let open = self.encode();
        let counters: Vec<&str> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ").and_then(|rest| rest.strip_suffix(" counter")))
            .collect();
        let mut out = String::with_capacity(open.len());
        for line in open.lines() {
            if line == "# EOF" {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
                let rest = line.strip_prefix(tag)?;
                let (name, tail) = rest.split_once(' ')?;
                counters.contains(&name).then(|| format!("{tag}{name}_total {tail}"))
            });
            out.push_str(renamed.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }
}
