'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Engine } = require('..')
const { world, tempDir } = require('../support/helpers.js')

test('bad files at open throw an Error with located diagnostics', () => {
  const dir = tempDir()
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules:\n  - manul_override\n  - rule: contact_tag\n    on_unavailable: skipp\n')
  assert.throws(
    () => Engine.open({ rules: file, world }),
    (e) => {
      assert.ok(e instanceof Error)
      assert.equal(e.diagnostics.length, 2)
      assert.deepStrictEqual(
        e.diagnostics.map((d) => [d.file, d.line, d.column]),
        [[file, 2, 5], [file, 4, 21]],
      )
      assert.match(e.diagnostics[0].message, /did you mean `manual_override`/)
      assert.match(e.message, /rules\.yaml:2:5/)
      return true
    },
  )
})

test('a missing file has a diagnostic without a position', () => {
  const dir = tempDir()
  assert.throws(
    () => Engine.open({ rules: path.join(dir, 'nope.yaml') }),
    (e) => e.diagnostics.length === 1 && e.diagnostics[0].line === null && /no such file/.test(e.diagnostics[0].message),
  )
})

test('reload throws on an invalid file and the last good configuration stays', () => {
  const dir = tempDir()
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules: [default_instance, any_available]\n')
  const engine = Engine.open({ rules: file, world })
  fs.writeFileSync(file, 'rules: [default_instanse]\n')
  assert.throws(() => engine.reload(), (e) => e.diagnostics[0].line === 1 && e.diagnostics[0].file === file)
  const status = engine.status()
  assert.equal(status.generation, 1)
  assert.match(status.last_error, /default_instanse/)
  assert.equal(engine.select({ location: 'shop', channel: 'sms', body: 'hi' }).rule, 'default_instance')
  engine.close()
})
