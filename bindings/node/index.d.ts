// Types of switchboard-node (docs/world.md, docs/service.md, docs/bindings.md). Hand-written; the native
// class underneath is described by the napi-generated binding.d.ts.

/** The recipient of a message. */
export interface Contact {
  /** The CRM contact id (the `sticky` strategy hashes it). */
  id?: string | null
  /** The contact's tags, in CRM order (`wa: +1-555-...` names an instance). */
  tags?: string[]
  /** The CRM user the contact is assigned to. */
  assigned_user?: string | null
  /** E.164, or national digits when the location has a `country` (`geomatch`). */
  phone?: string | null
  /** An IANA timezone name such as `America/New_York` (`send_window`). */
  timezone?: string | null
}

/** One sender instance, as in the world file or inline in a request. */
export interface InstanceSpec {
  id: string
  channel: string
  /** The N in `{ WA#N }`; omitted for all of a channel, they number 1, 2, … in order. */
  index?: number
  phone?: string
  /** Default false: only connected instances are ever selected. */
  connected?: boolean
  /** Default false. */
  default?: boolean
  /** CRM users assigned to this instance. */
  users?: string[]
  /** How long after the contact's last message it may answer free-form, e.g. `24h`. */
  reply_window?: string | null
}

/** One outbound message to route (docs/world.md). Unknown fields are a code-100 decision. */
export interface Request {
  location: string
  channel: string
  body: string
  contact?: Contact | null
  /** The location's instances for this request alone. */
  instances?: InstanceSpec[] | null
  /** The caller's own id (at most 256 bytes); the decision carries it back. */
  message_id?: string | null
}

/** The selected instance. */
export interface SelectedInstance {
  id: string
  channel: string
  index: number
  phone: string
}

/** A coded selection error (docs/errors.md). */
export interface SelectionError {
  /** 100 request, 101–109 built-in rules, ≥ 1000 plugin rules. */
  code: number
  /** `invalid_request`, `unknown_channel`, `instance_disconnected`, `no_instance_available`, … */
  kind: string
  /** What happened and what to check. */
  message: string
  /** Code 109: the next opening of the send window, RFC 3339 in UTC. */
  retry_at?: string
}

/** One rule consulted, in order. */
export interface TraceEntry {
  rule: string
  outcome: 'selected' | 'no_match' | 'fell_through' | 'failed'
  detail?: string
}

/** An instance was selected. */
export interface Selected {
  ok: true
  /** The rule that selected it. */
  rule: string
  /** The body with every routing pattern removed. */
  body: string
  instance: SelectedInstance
  /** Present when the instance has a `reply_window`: false when the contact wrote to it within the window, else true (only an approved template). */
  template_required?: boolean
  trace: TraceEntry[]
  /** The request's `message_id`, when it carried one. */
  message_id?: string
}

/** A selection error (or code 100: the request could not be used). */
export interface Failed {
  ok: false
  /** The rule that raised it; null for code 100 and an exhausted chain. */
  rule: string | null
  /** Absent when the request could not be read. */
  body?: string
  error: SelectionError
  trace: TraceEntry[]
  /** The request's `message_id`, when it carried one and it could be read. */
  message_id?: string
}

/** The decision for one request (docs/world.md). */
export type Decision = Selected | Failed

/** The reload status (docs/service.md `GET /v1/status`). */
export interface Status {
  /** The configuration in force: 1 after open, +1 per successful reload. */
  generation: number
  /** RFC 3339 UTC, or null. */
  last_attempt: string | null
  last_success: string | null
  /** The located messages of the last attempt, if it failed. */
  last_error: string | null
  rules_sha256: string
  world_sha256: string | null
  /** Channel → the enabled rule ids, in priority order. */
  order: Record<string, string[]>
}

/** An event from the send path (docs/live-state.md). */
export type Event =
  | { type: 'instance_status'; location: string; instance: string; connected: boolean | null; reason?: string | null; ttl?: string | null; time?: string | null }
  | { type: 'delivery'; location: string; instance: string; status: 'delivered' | 'failed'; error?: string | null; contact?: string | null; decision_id?: string | null; message_id?: string | null; time?: string | null }
  | { type: 'inbound'; location: string; channel: string; instance: string; contact: string; time?: string | null }

/** What `record` did: events accepted, and the rejected ones with why. */
export interface Recorded {
  accepted: number
  /** `line`: 1-based, the array position or the JSON Lines line. */
  rejected: { line: number; message: string }[]
}

/** The live state of one instance (docs/live-state.md). */
export interface InstanceState {
  id: string
  channel: string
  index: number
  connected: boolean
  connected_in_file: boolean
  override: { connected: boolean; reason: string | null; time: string; until: string | null } | null
  /** Null without a `health:` section in rules.yaml. */
  health: {
    state: 'healthy' | 'quarantined' | 'probation'
    consecutive_failures: number
    /** The end of the quarantine in force, else null. */
    until: string | null
    /** Deliveries and failures in the current `window`. */
    deliveries: number
    failures: number
  } | null
  /** Each of the instance's limits with its count in the current window. */
  usage: Record<string, { used: number; limit: number }> | null
  /** The warm-up schedule's day and its per_day limit; null without a schedule. */
  warmup: { day: number; per_day: number } | null
}

/** The live state of a location's instances (`GET /v1/instances`). */
export interface Instances {
  location: string
  generation: number
  instances: InstanceState[]
  /** Present when the store could not answer (the file's values are shown). */
  store_error?: string
}

/** One located problem of a rules or world file. */
export interface Diagnostic {
  file: string
  /** 1-based; null when the problem has no position (a missing file). */
  line: number | null
  column: number | null
  message: string
}

/** What `Engine.open` and `reload` throw for invalid files. */
export interface ConfigError extends Error {
  diagnostics: Diagnostic[]
}

/** One reload attempt (`reload()`'s result, `onReload`'s argument). */
export type ReloadEvent =
  | { type: 'reloaded'; generation: number }
  | { type: 'unchanged'; generation: number }
  | { type: 'failed'; generation: number; error: string }

/** Where `Engine.open` finds its files (paths relative to the working directory). */
export interface OpenOptions {
  rules: string
  world?: string | null
  /** Watch the files and reload when they change (docs/library.md); keeps the process alive until `close()`, as `fs.watch` does. Default false. */
  watch?: boolean
}

/** One reloadable configuration: rules.yaml (plugins included) and the world. */
export declare class Engine {
  private constructor()
  /** Loads the files; throws a `ConfigError` (an `Error` with `diagnostics`) when one is invalid. */
  static open(options: OpenOptions): Engine
  /** One decision; never throws for a request it cannot use (code-100 decision). */
  select(request: Request): Decision
  /** The decisions of several requests, in order, all on one configuration; a request it cannot use gets its code-100 decision in its place. */
  selectMany(requests: Request[]): Decision[]
  /** JSON text in, decision JSON text out; never throws for a request it cannot use. */
  selectJson(request: string): string
  /** The explain table (what `switchboard explain` prints). */
  explain(request: Request | string): string
  /** The status object (`GET /v1/status`). */
  status(): Status
  /** Erases the conversation memory (docs/capacity.md) of `contact` on `channel` at `location`; whether there was one. Throws when the capacity store cannot answer. */
  forget(location: string, channel: string, contact: string): boolean
  /** Applies events (an event, an array of them, or JSON Lines text) to the store of the configuration in force (docs/live-state.md). */
  record(events: Event | Event[] | string): Recorded
  /** The live state of a location's instances; null when the world in force has no such location. */
  instances(location: string): Instances | null
  /** Reloads now; throws a `ConfigError` on invalid files (the last good configuration stays). */
  reload(): ReloadEvent
  /** Calls `listener` on the event loop after every reload attempt (watcher or `reload()`). */
  onReload(listener: (event: ReloadEvent) => void): this
  /** Stops watching and releases the listeners, letting the process exit; selection keeps working. */
  close(): void
}
