'use strict'
// The same chain as rules.yaml (manual_override, temporary_switch,
// contact_tag, user_assignment, default_instance, any_available), written
// in plain JavaScript the way an integrator would, over the example world.
// Only for the benchmark: the baseline the binding is measured against.

const WORLD = {
  shop: [
    { id: 'wa-orders', channel: 'whatsapp', index: 1, phone: '+1-555-ORDERS', connected: true, users: ['u_orders'] },
    { id: 'wa-support', channel: 'whatsapp', index: 2, phone: '+1-555-SUPPORT', connected: true, default: true },
    { id: 'wa-billing', channel: 'whatsapp', index: 3, phone: '+1-555-BILLING', connected: true },
    { id: 'wa-legacy', channel: 'whatsapp', index: 4, phone: '+1-555-0104', connected: false },
    { id: 'im-support', channel: 'imessage', index: 1, phone: '+1-555-0201', connected: true, default: true },
    { id: 'im-billing', channel: 'imessage', index: 2, phone: '+1-555-0202', connected: true },
    { id: 'sms-main', channel: 'sms', index: 1, phone: '+1-555-0301', connected: true, default: true },
  ],
  agency: [
    { id: 'wa-client-a', channel: 'whatsapp', index: 1, phone: '+44 20 7946 0001', connected: true },
    { id: 'wa-client-b', channel: 'whatsapp', index: 2, phone: '+44 20 7946 0002', connected: true, users: ['u_team_b1', 'u_team_b2'] },
    { id: 'wa-main', channel: 'whatsapp', index: 3, phone: '+44 20 7946 0003', connected: true, default: true },
    { id: 'wa-spare', channel: 'whatsapp', index: 4, phone: '+44 20 7946 0004', connected: false, users: ['u_away'] },
    { id: 'im-main', channel: 'imessage', index: 1, phone: '+44 20 7946 0101', connected: false, default: true },
  ],
}

const CHANNELS = { whatsapp: { code: 'WA', prefix: 'wa:', override: true, temp: false }, imessage: { code: 'IM', prefix: 'im:', override: true, temp: true }, sms: { code: 'SMS', prefix: 'sms:', override: false, temp: false } }
const PATTERN = /\{\{[ \t]*(TEMP-)?(WA|IM)#([0-9]+)[ \t]*\}\}|\{[ \t]*(TEMP-)?(WA|IM)#([0-9]+)[ \t]*\}/gi
const KEYPAD = { A: 2, B: 2, C: 2, D: 3, E: 3, F: 3, G: 4, H: 4, I: 4, J: 5, K: 5, L: 5, M: 6, N: 6, O: 6, P: 7, Q: 7, R: 7, S: 7, T: 8, U: 8, V: 8, W: 9, X: 9, Y: 9, Z: 9 }

const digits = (phone) => phone.toUpperCase().replace(/[^0-9A-Z]/g, '').replace(/[A-Z]/g, (c) => KEYPAD[c])

/** Finds the patterns and strips them, each taking the whitespace after it (else before it). */
function scan(body) {
  const found = []
  let out = ''
  let last = 0
  for (const m of body.matchAll(PATTERN)) {
    const temp = Boolean(m[1] || m[4])
    found.push({ text: m[0], temp, code: (m[2] || m[5]).toUpperCase(), index: Number(m[3] || m[6]) })
    let start = m.index
    let end = m.index + m[0].length
    const after = /^[ \t]+/.exec(body.slice(end))
    if (after) end += after[0].length
    else {
      const before = /[ \t]+$/.exec(body.slice(last, start))
      if (before) start -= before[0].length
    }
    out += body.slice(last, start)
    last = end
  }
  return { found, body: out + body.slice(last) }
}

const fail = (code, kind, message) => ({ code, kind, message })

function select(request) {
  const channel = CHANNELS[request.channel]
  if (!channel) return { ok: false, rule: null, body: request.body, error: fail(100, 'unknown_channel', `unknown channel ${request.channel}`), trace: [] }
  const all = request.instances || WORLD[request.location]
  if (!all) return { ok: false, rule: null, body: request.body, error: fail(100, 'unknown_location', `unknown location ${request.location}`), trace: [] }
  let instances = all.filter((i) => i.channel === request.channel)
  // unnumbered: 1, 2, … in order
  if (instances.some((i) => i.index === undefined)) instances = instances.map((i, n) => ({ ...i, index: n + 1 }))
  instances.sort((a, b) => a.index - b.index)
  const { found, body } = scan(request.body)
  const trace = []
  const done = (rule, result) => {
    trace.push({ rule, outcome: result.id ? 'selected' : 'failed' })
    return result.id
      ? { ok: true, rule, body, instance: { id: result.id, channel: result.channel, index: result.index, phone: result.phone }, trace }
      : { ok: false, rule, body, error: result, trace }
  }
  const byIndex = (rule, code, temp) => {
    const mine = found.filter((p) => p.code === channel.code && p.temp === temp)
    if (!mine.length || (temp ? !channel.temp : !channel.override)) return null
    if (new Set(mine.map((p) => p.index)).size > 1) return done(rule, fail(code, 'conflicting_override', 'the body names several instances'))
    const instance = instances.find((i) => i.index === mine[0].index)
    if (!instance) return done(rule, fail(code, 'instance_not_found', `no instance #${mine[0].index}`))
    if (!instance.connected) return done(rule, fail(code, 'instance_disconnected', `${instance.id} is disconnected`))
    return done(rule, instance)
  }
  let d = byIndex('manual_override', 101, false)
  if (d) return d
  trace.push({ rule: 'manual_override', outcome: 'no_match' })
  d = byIndex('temporary_switch', 102, true)
  if (d) return d
  trace.push({ rule: 'temporary_switch', outcome: 'no_match' })

  const contact = request.contact || {}
  const tagged = []
  for (const tag of contact.tags || []) {
    if (!tag.toLowerCase().startsWith(channel.prefix)) continue
    const number = digits(tag.slice(channel.prefix.length))
    if (!/[0-9]/.test(tag)) continue
    for (const i of instances) if (digits(i.phone) === number) tagged.push(i)
  }
  if (tagged.length) {
    const usable = tagged.find((i) => i.connected)
    return done('contact_tag', usable || fail(103, 'instance_disconnected', 'the tagged instances are disconnected'))
  }
  trace.push({ rule: 'contact_tag', outcome: 'no_match' })

  if (contact.assigned_user) {
    const assigned = instances.filter((i) => (i.users || []).includes(contact.assigned_user))
    if (assigned.length) {
      const usable = assigned.find((i) => i.connected)
      return done('user_assignment', usable || fail(104, 'instance_disconnected', "the assigned user's instances are disconnected"))
    }
  }
  trace.push({ rule: 'user_assignment', outcome: 'no_match' })

  const def = instances.find((i) => i.default)
  if (def && def.connected) return done('default_instance', def)
  trace.push({ rule: 'default_instance', outcome: def ? 'fell_through' : 'no_match' })

  const any = instances.find((i) => i.connected && i.phone && i.phone.trim())
  return done('any_available', any || fail(106, 'no_instance_available', 'no connected instance with a phone'))
}

module.exports = { select }
