'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { rules, world, cliDecisions, requestLines } = require('../support/helpers.js')

test('4 worker threads select concurrently, each with correct results', async () => {
  const expected = cliDecisions()
  const lines = requestLines()
  const script = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Engine } = require(workerData.binding);
    const engine = Engine.open({ rules: workerData.rules, world: workerData.world });
    const out = [];
    for (let round = 0; round < workerData.rounds; round++) {
      workerData.lines.forEach((line, i) => {
        const text = engine.selectJson(line);
        let obj = null;
        try { obj = engine.select(JSON.parse(line)); } catch {}
        if (round === workerData.rounds - 1) out[i] = { text, obj };
      });
    }
    engine.close();
    parentPort.postMessage(out);`
  const run = () =>
    new Promise((resolve, reject) => {
      const worker = new Worker(script, {
        eval: true,
        workerData: { binding: path.join(__dirname, '..'), rules, world, lines, rounds: 200 },
      })
      worker.once('message', resolve)
      worker.once('error', reject)
    })
  const results = await Promise.all([run(), run(), run(), run()])
  for (const out of results) {
    out.forEach(({ text, obj }, i) => {
      assert.deepStrictEqual(JSON.parse(text), expected[i])
      if (obj !== null) assert.deepStrictEqual(obj, expected[i])
    })
  }
})
