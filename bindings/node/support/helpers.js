'use strict'
// Shared set-up of the binding's tests: the repository, the CLI and the
// business-hours plugin built by cargo (in CARGO_TARGET_DIR or target/).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const repo = path.resolve(__dirname, '..', '..', '..')
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target')
const rules = path.join(repo, 'rules.yaml')
const world = path.join(repo, 'examples', 'world.yaml')
const requestsFile = path.join(repo, 'examples', 'requests.jsonl')

let built = false
/** Builds the CLI and the plugin (a no-op when they are up to date). */
function buildArtifacts() {
  if (built) return
  // `--bin` alone finds the package that has the binary (the library's or a CLI crate's)
  const cargo = (args) => execFileSync('cargo', ['build', '--quiet', ...args], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] })
  cargo(['--bin', 'switchboard'])
  cargo(['-p', 'switchboard-plugin-business-hours', '-p', 'switchboard-plugin-misbehave', '--lib'])
  built = true
}

/** The CLI's decisions on examples/requests.jsonl, one parsed object per line. */
function cliDecisions() {
  buildArtifacts()
  const out = execFileSync(path.join(targetDir, 'debug', 'switchboard'), ['select', '--rules', rules, '--world', world], {
    input: fs.readFileSync(requestsFile),
  })
  return out.toString('utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l))
}

/** The non-blank lines of examples/requests.jsonl. */
function requestLines() {
  return fs.readFileSync(requestsFile, 'utf8').split('\n').filter((l) => l.trim() !== '')
}

/** A plugin library built by the workspace (`business_hours`, `misbehave`). */
function pluginPath(name = 'business_hours') {
  buildArtifacts()
  return path.join(targetDir, 'debug', `libswitchboard_${name}.so`)
}

const tempDirs = []
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh temporary directory, removed when the test process exits. */
function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-node-'))
  tempDirs.push(dir)
  return dir
}

/** Writes `text` to `file` the way editors and deploy tools do: a temporary file, then rename. */
function writeByRename(file, text) {
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}

/** Resolves when `predicate()` holds, polling; rejects after `ms`. */
async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

module.exports = { repo, targetDir, rules, world, requestsFile, cliDecisions, requestLines, pluginPath, tempDir, writeByRename, waitFor }
