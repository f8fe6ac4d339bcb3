'use strict'
// Switchboard for Node.js (docs/bindings.md). Glue only: requests go to the Rust
// engine as JSON text and decisions come back as the engine's decision JSON, so
// `select(obj)` and `selectJson(text)` decide exactly like one line of
// `switchboard select`. The native addon is loaded by the napi-generated
// `binding.js` (per-platform file or package).

const { NativeEngine } = require('./binding.js')

/** The engine: one reloadable configuration (rules.yaml, plugins, world). */
class Engine {
  #native

  /** @private use `Engine.open`. */
  constructor(native) {
    if (!(native instanceof NativeEngine)) {
      throw new TypeError('use Engine.open({ rules, world, watch }) to create an Engine')
    }
    this.#native = native
  }

  /** Loads the files; throws an Error with `diagnostics` when one is invalid. */
  static open(options) {
    if (options === null || typeof options !== 'object' || typeof options.rules !== 'string') {
      throw new TypeError('Engine.open expects { rules: string, world?: string, watch?: boolean }')
    }
    const { rules, world, watch } = options
    return new Engine(NativeEngine.open({ rules, world: world ?? undefined, watch: Boolean(watch) }))
  }

  /** One decision (object); a request it cannot use gets the code-100 decision. */
  select(request) {
    const { text, error } = encode(request)
    return JSON.parse(text === undefined ? this.#native.requestError(error) : this.#native.selectJson(text))
  }

  /**
   * The decisions of several requests, in order, all on one configuration
   * (a reload in between changes none of them); a request it cannot use
   * gets its code-100 decision in its place.
   */
  selectMany(requests) {
    if (!Array.isArray(requests)) {
      throw new TypeError(`selectMany expects an array of requests, got ${describe(requests)}`)
    }
    const encoded = requests.map(encode)
    const decided = this.#native.selectManyJson(encoded.map(({ text }) => text ?? 'null'))
    return decided.map((decision, i) => {
      const { text, error } = encoded[i]
      return JSON.parse(text === undefined ? this.#native.requestError(error) : decision)
    })
  }

  /** One decision, JSON text in, JSON text out (the fast path). */
  selectJson(text) {
    if (typeof text !== 'string') {
      return this.#native.requestError(`expected a JSON text (string), got ${describe(text)}`)
    }
    return this.#native.selectJson(text)
  }

  /** The explain table of a request (object or JSON text). */
  explain(request) {
    if (typeof request === 'string') return this.#native.explain(request)
    const { text, error } = encode(request)
    return this.#native.explain(text === undefined ? 'null' : text) + (error ? `(${error})\n` : '')
  }

  /** The status object (`GET /v1/status`). */
  status() {
    return JSON.parse(this.#native.statusJson())
  }

  /** Erases one contact's conversation memory on one channel; whether there was one. */
  forget(location, channel, contact) {
    return this.#native.forget(String(location), String(channel), String(contact))
  }

  /**
   * Applies events from the send path (docs/live-state.md): an event object, an array
   * of them, or JSON Lines text. Returns `{accepted, rejected: [{line, message}]}`
   * (`line` 1-based: the array position, or the text's line).
   */
  record(events) {
    let text
    if (typeof events === 'string') {
      text = events
    } else if (Array.isArray(events)) {
      text = events.map((e) => encodeEvent(e)).join('\n')
    } else {
      text = encodeEvent(events)
    }
    return JSON.parse(this.#native.recordJson(text))
  }

  /** The live state of a location's instances (the `/v1/instances` object); `null` for an unknown location. */
  instances(location) {
    const text = this.#native.instancesJson(String(location))
    return text == null ? null : JSON.parse(text)
  }

  /** Reloads now; throws (with `diagnostics`) on invalid files, the last good configuration stays. */
  reload() {
    return JSON.parse(this.#native.reload())
  }

  /** Calls `listener(event)` on the event loop after every reload attempt. */
  onReload(listener) {
    if (typeof listener !== 'function') {
      throw new TypeError('onReload expects a function')
    }
    this.#native.onReload((text) => listener(JSON.parse(text)))
    return this
  }

  /** Stops watching and releases the listeners, letting the process exit; selection keeps working. */
  close() {
    this.#native.close()
  }
}

/** `{ text }`: the JSON text of a request value, or `{ error }` when it has none. */
function encode(request) {
  try {
    const text = JSON.stringify(request)
    // undefined, a function, a symbol: no JSON; `null` gets the engine's code-100 answer.
    return { text: typeof text === 'string' ? text : 'null' }
  } catch (e) {
    // A BigInt, a cycle.
    return { error: `cannot encode it as JSON: ${e.message}` }
  }
}

function describe(value) {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
}

/** One event as one line of JSON; something that is not JSON-encodable becomes a line the engine rejects, naming why. */
function encodeEvent(event) {
  try {
    const text = JSON.stringify(event)
    return text === undefined ? JSON.stringify(describe(event)) : text
  } catch (e) {
    return JSON.stringify(`cannot encode the event: ${e.message}`)
  }
}

module.exports = { Engine }
