// Types of switchboard-node (SPEC §7, §9, §11). Hand-written; the native
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

/** One outbound message to route (SPEC §7). Unknown fields are a code-100 decision. */
export interface Request {
  location: string
  channel: string
  body: string
  contact?: Contact | null
  /** The location's instances for this request alone. */
  instances?: InstanceSpec[] | null
}

/** The selected instance. */
export interface SelectedInstance {
  id: string
  channel: string
  index: number
  phone: string
}

/** A coded selection error (SPEC §4). */
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
  trace: TraceEntry[]
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
}

/** The decision for one request (SPEC §7). */
export type Decision = Selected | Failed

/** The reload status (SPEC §9 `GET /v1/status`). */
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
  /** Watch the files and reload when they change (SPEC §6); keeps the process alive until `close()`, as `fs.watch` does. Default false. */
  watch?: boolean
}

/** One reloadable configuration: rules.yaml (plugins included) and the world. */
export declare class Engine {
  private constructor()
  /** Loads the files; throws a `ConfigError` (an `Error` with `diagnostics`) when one is invalid. */
  static open(options: OpenOptions): Engine
  /** One decision; never throws for a request it cannot use (code-100 decision). */
  select(request: Request): Decision
  /** JSON text in, §7 JSON text out; never throws for a request it cannot use. */
  selectJson(request: string): string
  /** The explain table (what `switchboard explain` prints). */
  explain(request: Request | string): string
  /** The §9 status object. */
  status(): Status
  /** Erases the conversation memory (SPEC §10) of `contact` on `channel` at `location`; whether there was one. Throws when the capacity store cannot answer. */
  forget(location: string, channel: string, contact: string): boolean
  /** Reloads now; throws a `ConfigError` on invalid files (the last good configuration stays). */
  reload(): ReloadEvent
  /** Calls `listener` on the event loop after every reload attempt (watcher or `reload()`). */
  onReload(listener: (event: ReloadEvent) => void): this
  /** Stops watching and releases the listeners, letting the process exit; selection keeps working. */
  close(): void
}
