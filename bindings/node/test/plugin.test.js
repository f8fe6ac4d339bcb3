'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Engine } = require('..')
const { world, tempDir, pluginPath } = require('../support/helpers.js')

test('a plugin listed in rules.yaml is loaded, as in the CLI', () => {
  const dir = tempDir()
  fs.mkdirSync(path.join(dir, 'plugins'))
  fs.copyFileSync(pluginPath(), path.join(dir, 'plugins', 'libbusiness_hours.so'))
  const file = path.join(dir, 'rules.yaml')
  // `days: []`: always closed, so the after-hours instance (#2) is chosen
  fs.writeFileSync(
    file,
    'plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - manual_override\n  - rule: business_hours\n    days: []\n    after_hours_instance: 2\n  - default_instance\n',
  )
  const engine = Engine.open({ rules: file, world })
  const d = engine.select({ location: 'shop', channel: 'whatsapp', body: 'Hi' })
  assert.equal(d.ok, true)
  assert.equal(d.rule, 'business_hours')
  assert.equal(d.instance.id, 'wa-support')
  assert.deepStrictEqual(engine.status().order.whatsapp, ['manual_override', 'business_hours', 'default_instance'])
  engine.close()
})

test('a plugin option error at open is located in rules.yaml', () => {
  const dir = tempDir()
  fs.mkdirSync(path.join(dir, 'plugins'))
  fs.copyFileSync(pluginPath(), path.join(dir, 'plugins', 'libbusiness_hours.so'))
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'plugins:\n  - path: plugins/libbusiness_hours.so\nrules:\n  - rule: business_hours\n    opne: "08:00"\n')
  assert.throws(() => Engine.open({ rules: file, world }), (e) => e.diagnostics.some((d) => d.file === file && d.line === 5))
})

test('a plugin rule that panics is its own error decision; nothing crosses the boundary', () => {
  const dir = tempDir()
  fs.mkdirSync(path.join(dir, 'plugins'))
  fs.copyFileSync(pluginPath('misbehave'), path.join(dir, 'plugins', 'libmisbehave.so'))
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'plugins: [{path: plugins/libmisbehave.so}]\nrules: [always_panics]\n')
  const engine = Engine.open({ rules: file, world })
  for (let i = 0; i < 3; i++) {
    const d = engine.select({ location: 'shop', channel: 'whatsapp', body: 'Hi' })
    assert.deepStrictEqual([d.ok, d.rule, d.error.code, d.error.kind], [false, 'always_panics', 1900, 'plugin_panic'])
  }
  assert.equal(JSON.parse(engine.selectJson('{"location":"shop","channel":"sms","body":"x"}')).error.kind, 'plugin_panic')
})
