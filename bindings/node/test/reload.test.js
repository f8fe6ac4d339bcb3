'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Engine } = require('..')
const { world, tempDir, writeByRename, waitFor } = require('../support/helpers.js')

const SMS = { location: 'shop', channel: 'sms', body: 'hi' }

test('watch: a rules file replaced by rename is reloaded, onReload fires on the event loop', async (t) => {
  const dir = tempDir()
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules: [default_instance, any_available]\n')
  const engine = Engine.open({ rules: file, world, watch: true })
  t.after(() => engine.close()) // even when an assertion fails
  const events = []
  engine.onReload((event) => events.push(event))
  assert.equal(engine.select(SMS).rule, 'default_instance')

  writeByRename(file, 'rules: [any_available]\n')
  await waitFor(() => events.some((e) => e.type === 'reloaded'), 10_000, 'the reloaded event')
  assert.deepStrictEqual(events.find((e) => e.type === 'reloaded'), { type: 'reloaded', generation: 2 })
  assert.equal(engine.status().generation, 2)
  assert.equal(engine.select(SMS).rule, 'any_available')

  // an invalid file: a failed event, the last good configuration stays
  writeByRename(file, 'rules: [any_availabel]\n')
  await waitFor(() => events.some((e) => e.type === 'failed'), 10_000, 'the failed event')
  const failed = events.find((e) => e.type === 'failed')
  assert.equal(failed.generation, 2)
  assert.match(failed.error, /rules\.yaml:1:\d+: .*any_availabel/)
  assert.equal(engine.status().generation, 2)
  assert.equal(engine.select(SMS).rule, 'any_available')
  engine.close()
})

test('reload() also reaches onReload listeners', async () => {
  const dir = tempDir()
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules: [any_available]\n')
  const engine = Engine.open({ rules: file, world })
  const events = []
  engine.onReload((event) => events.push(event))
  fs.writeFileSync(file, 'rules: [default_instance, any_available]\n')
  assert.deepStrictEqual(engine.reload(), { type: 'reloaded', generation: 2 })
  await waitFor(() => events.length === 1, 5_000, 'the event')
  assert.deepStrictEqual(events, [{ type: 'reloaded', generation: 2 }])
  engine.close()
})

/** Runs `script` in a child node process; resolves with its exit code, or null if it is still running after `ms`. */
function runChild(script, ms) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'inherit', 'inherit'] })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve(null)
    }, ms)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

test('close() lets the process exit by itself', async () => {
  const dir = tempDir()
  const file = path.join(dir, 'rules.yaml')
  fs.writeFileSync(file, 'rules: [any_available]\n')
  const open = `const { Engine } = require('.');
    const engine = Engine.open({ rules: ${JSON.stringify(file)}, world: ${JSON.stringify(world)}, watch: true });
    engine.onReload(() => {});
    if (engine.select({ location: 'shop', channel: 'sms', body: 'hi' }).ok !== true) process.exit(3);`
  assert.equal(await runChild(`${open}\nengine.close();`, 15_000), 0, 'the child exited within the deadline')
  // without close(), a watching engine keeps the process alive, as fs.watch does
  assert.equal(await runChild(open, 1_500), null, 'the child still ran')
  // an engine that does not watch never holds the event loop, listeners or not
  assert.equal(await runChild(open.replace('watch: true', 'watch: false'), 15_000), 0, 'the child exited')
  // a reload event delivered just before close() does not hold it either
  const busy = `${open}\nrequire('fs').writeFileSync(${JSON.stringify(file)}, 'rules: [default_instance, any_available]\\n'); setTimeout(() => engine.close(), 300);`
  assert.equal(await runChild(busy, 15_000), 0, 'the child exited after a reload and close()')
})
