'use strict'
// ns per decision: the binding's select (object) and selectJson (text)
// beside the plain JavaScript chain (plain-chain.js), on the example
// requests. Run after a release build: `npm run build && node bench/select.js`.

const fs = require('node:fs')
const path = require('node:path')
const assert = require('node:assert/strict')
const { Engine } = require('..')
const plain = require('./plain-chain.js')

const repo = path.resolve(__dirname, '..', '..', '..')
const engine = Engine.open({ rules: path.join(repo, 'rules.yaml'), world: path.join(repo, 'examples', 'world.yaml') })
// the routable example requests (every rule and error), as text and objects
const lines = fs.readFileSync(path.join(repo, 'examples', 'requests.jsonl'), 'utf8').split('\n')
  .filter((l) => { try { const r = JSON.parse(l); return r.location !== 'nowhere' && r.channel !== 'telegram' } catch { return false } })
const objects = lines.map((l) => JSON.parse(l))

// the plain chain decides as the engine does (rule, instance, code, body, trace outcomes)
const key = (d) => JSON.stringify([d.ok, d.rule, d.body, d.instance && d.instance.id, d.error && d.error.code, d.trace.map((t) => t.rule + ':' + t.outcome)])
objects.forEach((r, i) => assert.equal(key(plain.select(r)), key(engine.select(r)), lines[i]))

/** ns per call of `fn` over `inputs`, timed for about `ms`. */
function time(fn, inputs, ms) {
  let sink = 0
  let calls = 0
  const t0 = process.hrtime.bigint()
  const end = t0 + BigInt(ms) * 1_000_000n
  let now = t0
  while (now < end) {
    for (const x of inputs) sink += fn(x) ? 1 : 0
    calls += inputs.length
    now = process.hrtime.bigint()
  }
  if (sink < 0) console.log(sink)
  return Number(now - t0) / calls
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/**
 * The binding beside the plain chain, measured in alternating 100 ms
 * windows (15 pairs) so that load from other processes hits both alike;
 * reports the medians and the median of the per-pair ratios.
 */
function pair(name, binding, bindingInputs, plainName, plainFn, plainInputs) {
  time(binding, bindingInputs, 200) // warm-up
  time(plainFn, plainInputs, 200)
  const a = []
  const b = []
  for (let i = 0; i < 15; i++) {
    a.push(time(binding, bindingInputs, 100))
    b.push(time(plainFn, plainInputs, 100))
  }
  const ratio = median(a.map((x, i) => b[i] / x))
  console.log(`${name.padEnd(50)} ${median(a).toFixed(0).padStart(6)} ns/decision`)
  console.log(`${plainName.padEnd(50)} ${median(b).toFixed(0).padStart(6)} ns/decision   (binding ${ratio.toFixed(2)}x as fast)`)
}

console.log(`${lines.length} example requests, node ${process.version}; medians of 15 alternating 100 ms windows`)
pair('binding selectJson(text) -> text', (t) => engine.selectJson(t), lines, 'plain chain, text -> text (JSON.parse/stringify)', (t) => JSON.stringify(plain.select(JSON.parse(t))), lines)
pair('binding selectJson(text) -> text', (t) => engine.selectJson(t), lines, 'plain chain, object -> object', (o) => plain.select(o), objects)
pair('binding select(object) -> object', (o) => engine.select(o), objects, 'plain chain, object -> object', (o) => plain.select(o), objects)
engine.close()
