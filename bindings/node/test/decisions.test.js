'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('..')
const { rules, world, cliDecisions, requestLines } = require('../support/helpers.js')

test('selectJson and select decide exactly like the CLI on the example requests', () => {
  const expected = cliDecisions()
  const lines = requestLines()
  assert.equal(expected.length, lines.length)
  const engine = Engine.open({ rules, world })
  lines.forEach((line, i) => {
    assert.deepStrictEqual(JSON.parse(engine.selectJson(line)), expected[i], `selectJson, line ${i + 1}: ${line}`)
    let request
    try {
      request = JSON.parse(line)
    } catch {
      return // not JSON: only the text path can carry it
    }
    assert.deepStrictEqual(engine.select(request), expected[i], `select, line ${i + 1}: ${line}`)
  })
  // every rule and error of the examples is covered
  const seen = new Set(expected.map((d) => (d.ok ? d.rule : d.error.code)))
  for (const want of ['manual_override', 'temporary_switch', 'contact_tag', 'user_assignment', 'default_instance', 'any_available', 100, 101, 103, 104, 106]) {
    assert.ok(seen.has(want), `the examples cover ${want}`)
  }
  engine.close()
})

test('selectMany decides a batch like the CLI, in order, a bad request in its place', () => {
  const expected = cliDecisions()
  const requests = []
  const wanted = []
  requestLines().forEach((line, i) => {
    try {
      requests.push(JSON.parse(line))
      wanted.push(expected[i])
    } catch {
      // not JSON: only the text path can carry it
    }
  })
  const engine = Engine.open({ rules, world })
  const cyclic = { location: 'shop', channel: 'sms', body: 'x' }
  cyclic.self = cyclic
  const decisions = engine.selectMany([...requests, cyclic])
  assert.deepStrictEqual(decisions.slice(0, requests.length), wanted)
  const last = decisions[requests.length]
  assert.equal(last.error.code, 100)
  assert.deepStrictEqual(engine.selectMany([]), [])
  assert.throws(() => engine.selectMany('nope'), TypeError)
  engine.close()
})

test('a request that cannot be used is a code-100 decision, never a throw', () => {
  const engine = Engine.open({ rules, world })
  for (const bad of [undefined, null, 42, 'text', [1, 2], { location: 'shop' }, { location: 'shop', channel: 'sms', body: 'x', typo: 1 }, 10n]) {
    const d = engine.select(bad)
    assert.equal(d.ok, false)
    assert.equal(d.error.code, 100, `select(${String(bad)})`)
    assert.equal(d.rule, null)
  }
  for (const bad of ['', 'not json', '[]', undefined, 5, {}]) {
    const d = JSON.parse(engine.selectJson(bad))
    assert.equal(d.error.code, 100, `selectJson(${String(bad)})`)
  }
  engine.close()
})

test('explain gives the table and status the /v1/status object', () => {
  const engine = Engine.open({ rules, world })
  const table = engine.explain({ location: 'shop', channel: 'whatsapp', body: 'Hi { WA#2 }' })
  assert.match(table, /decision {2}selected wa-support \(#2, \+1-555-SUPPORT\) by manual_override/)
  assert.match(engine.explain('not json'), /error 100/)
  const status = engine.status()
  assert.equal(typeof status.generation, 'number')
  assert.equal(status.generation, 1)
  assert.match(status.rules_sha256, /^[0-9a-f]{64}$/)
  assert.equal(status.last_error, null)
  assert.ok(Array.isArray(status.order.whatsapp))
  assert.deepStrictEqual(engine.reload(), { type: 'unchanged', generation: 1 })
  engine.close()
})

test('conversations are remembered, and forget erases one', (t) => {
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-conv-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules:\n  - rule: conversation\n    ttl: 1h\n  - rule: any_available\n    strategy: round_robin\n')
  const engine = Engine.open({ rules: file, world })
  const send = (contact) => engine.select({ location: 'shop', channel: 'whatsapp', body: 'hi', now: '2026-11-25T14:00:00Z', contact: { id: contact } })
  const first = send('c1')
  assert.equal(first.rule, 'any_available')
  const again = send('c1')
  assert.equal(again.rule, 'conversation')
  assert.deepStrictEqual(again.instance, first.instance)
  assert.equal(engine.forget('shop', 'whatsapp', 'c1'), true)
  assert.equal(engine.forget('shop', 'whatsapp', 'c1'), false)
  assert.equal(send('c1').rule, 'any_available')
  fs.writeFileSync(file, "rules: [conversation, any_available]\ncapacity: {store: redis, redis_url: 'redis://127.0.0.1:1/0'}\n")
  const down = Engine.open({ rules: file, world })
  assert.throws(() => down.forget('shop', 'whatsapp', 'c1'), /cannot forget/)
  down.close()
  engine.close()
})
