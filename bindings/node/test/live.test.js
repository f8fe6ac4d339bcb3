'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('..')
const { rules, world } = require('../support/helpers.js')

const down = { type: 'instance_status', location: 'shop', instance: 'wa-orders', connected: false, reason: 'logged out', time: '2026-12-07T15:00:00Z' }
const request = { location: 'shop', channel: 'whatsapp', body: 'Hi { WA#1 }', now: '2026-12-07T15:10:00Z', message_id: 'crm-1' }

test('record takes an event, an array or JSON Lines; decisions and instances see it (docs/bindings.md, docs/live-state.md)', () => {
  const engine = Engine.open({ rules, world })
  assert.equal(engine.select(request).instance.id, 'wa-orders')
  assert.equal(engine.select(request).message_id, 'crm-1')
  assert.deepStrictEqual(engine.record(down), { accepted: 1, rejected: [] })
  const d = engine.select(request)
  assert.equal(d.error.code, 101)
  assert.equal(d.error.kind, 'instance_disconnected')
  assert.equal(d.message_id, 'crm-1')
  const shop = engine.instances('shop')
  assert.equal(shop.location, 'shop')
  assert.equal(shop.instances[0].id, 'wa-orders')
  assert.equal(shop.instances[0].connected, false)
  assert.equal(shop.instances[0].connected_in_file, true)
  assert.equal(shop.instances[0].override.reason, 'logged out')
  assert.equal(engine.instances('nowhere'), null)
  // An array: each element is a line.
  const clear = { ...down, connected: null, reason: undefined, ttl: undefined, time: '2026-12-07T15:05:00Z' }
  const answer = engine.record([{ type: 'nap' }, clear, 7])
  assert.equal(answer.accepted, 1)
  assert.deepStrictEqual(answer.rejected.map((r) => r.line), [1, 3])
  assert.match(answer.rejected[0].message, /unknown event type `nap`/)
  assert.equal(engine.select(request).instance.id, 'wa-orders')
  // JSON Lines text.
  const text = `${JSON.stringify({ ...down, time: '2026-12-07T15:06:00Z' })}\n{"type":"delivery","location":"shop","instance":"wa-orders","status":"delivered"}\n`
  assert.deepStrictEqual(engine.record(text), { accepted: 2, rejected: [] })
  assert.equal(engine.select(request).error.code, 101)
  engine.close()
})
