// The comparison point of the serve benchmark: the same default chain
// (docs/rules.md, rules.yaml as shipped, strategy lowest_index) written the way an
// integrator would write it in a plain Node.js `http` server, no framework.
// Usage: node node-server.js WORLD.json [PORT]   (0 or none: a free port, printed on stderr)
"use strict";
const http = require("http");
const fs = require("fs");

const world = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const port = Number(process.argv[3] || 0);

const CHANNELS = {
  whatsapp: { code: "WA", override: true, temp: false, prefix: "wa:" },
  imessage: { code: "IM", override: true, temp: true, prefix: "im:" },
  sms: { code: "SMS", override: false, temp: false, prefix: "sms:" },
};

// location -> channel -> instances by index
const locations = new Map();
for (const loc of world.locations) {
  const byChannel = new Map();
  for (const inst of loc.instances) {
    if (!byChannel.has(inst.channel)) byChannel.set(inst.channel, []);
    byChannel.get(inst.channel).push(inst);
  }
  for (const list of byChannel.values()) {
    list.forEach((inst, i) => { if (inst.index === undefined) inst.index = i + 1; });
    list.sort((a, b) => a.index - b.index);
  }
  locations.set(loc.id, byChannel);
}

const KEYPAD = "22233344455566677778889999";
function digits(phone) {
  let out = "";
  for (const ch of phone.toUpperCase()) {
    if (ch >= "0" && ch <= "9") out += ch;
    else if (ch >= "A" && ch <= "Z") out += KEYPAD[ch.charCodeAt(0) - 65];
  }
  return out;
}

// Every pattern of every channel: {{ C#N }} preferred, then { C#N }.
const PATTERN = /\{\{[ \t]*(TEMP-)?(WA|IM|SMS)#([0-9]+)[ \t]*\}\}|\{[ \t]*(TEMP-)?(WA|IM|SMS)#([0-9]+)[ \t]*\}/gi;

function scan(body) {
  const found = [];
  for (const m of body.matchAll(PATTERN)) {
    const temp = Boolean(m[1] || m[4]);
    const code = (m[2] || m[5]).toUpperCase();
    const channel = Object.keys(CHANNELS).find((c) => CHANNELS[c].code === code);
    const caps = CHANNELS[channel];
    if (temp ? !caps.temp : !caps.override) continue; // not a pattern of that channel
    found.push({ start: m.index, end: m.index + m[0].length, temp, channel, index: Number(m[3] || m[6]) });
  }
  return found;
}

function strip(body, found) {
  let out = "";
  let pos = 0;
  for (const p of found) {
    let start = p.start;
    let end = p.end;
    let after = end;
    while (after < body.length && (body[after] === " " || body[after] === "\t")) after++;
    if (after > end) end = after;
    else {
      while (start > pos && (body[start - 1] === " " || body[start - 1] === "\t")) start--;
    }
    out += body.slice(pos, start);
    pos = end;
  }
  return out + body.slice(pos);
}

const error = (code, kind, message) => ({ code, kind, message });

function byIndex(rule, code, instances, patterns) {
  if (patterns.length === 0) return null;
  const indexes = [...new Set(patterns.map((p) => p.index))];
  if (indexes.length > 1) return { rule, error: error(code, "conflicting_override", `patterns name ${indexes.join(", ")}`) };
  const inst = instances.find((i) => i.index === indexes[0]);
  if (!inst) return { rule, error: error(code, "instance_not_found", `no instance #${indexes[0]}`) };
  if (!inst.connected) return { rule, error: error(code, "instance_disconnected", `${inst.id} is disconnected`) };
  return { rule, instance: inst };
}

function select(req) {
  if (typeof req !== "object" || req === null || typeof req.location !== "string" ||
      typeof req.channel !== "string" || typeof req.body !== "string") {
    return { rule: null, error: error(100, "invalid_request", "location, channel and body are required") };
  }
  const caps = CHANNELS[req.channel];
  if (!caps) return { rule: null, error: error(100, "unknown_channel", `unknown channel ${req.channel}`) };
  let instances;
  if (Array.isArray(req.instances)) {
    instances = req.instances.filter((i) => i.channel === req.channel).map((i, n) => ({ index: n + 1, ...i }));
  } else {
    const loc = locations.get(req.location);
    if (!loc) return { rule: null, body: req.body, error: error(100, "unknown_location", `unknown location ${req.location}`) };
    instances = loc.get(req.channel) || [];
  }
  const found = scan(req.body);
  const body = strip(req.body, found);
  const trace = [];
  const mine = found.filter((p) => p.channel === req.channel);
  const done = (d, rule) => { trace.push({ rule, outcome: d.instance ? "selected" : "failed" }); return { ...d, body, trace }; };

  let d = byIndex("manual_override", 101, instances, mine.filter((p) => !p.temp));
  if (d) return done(d, "manual_override");
  trace.push({ rule: "manual_override", outcome: "no_match" });
  d = byIndex("temporary_switch", 102, instances, mine.filter((p) => p.temp));
  if (d) return done(d, "temporary_switch");
  trace.push({ rule: "temporary_switch", outcome: "no_match" });

  const contact = req.contact || {};
  const tagged = [];
  for (const tag of contact.tags || []) {
    const t = tag.trim();
    if (!t.toLowerCase().startsWith(caps.prefix)) continue;
    const number = digits(t.slice(caps.prefix.length).trim());
    if (!number) continue;
    for (const inst of instances) if (digits(inst.phone || "") === number) tagged.push(inst);
  }
  if (tagged.length) {
    const inst = tagged.find((i) => i.connected);
    return done(inst ? { rule: "contact_tag", instance: inst }
      : { rule: "contact_tag", error: error(103, "instance_disconnected", "tagged instances are disconnected") }, "contact_tag");
  }
  trace.push({ rule: "contact_tag", outcome: "no_match" });

  if (contact.assigned_user) {
    const mine = instances.filter((i) => (i.users || []).includes(contact.assigned_user));
    if (mine.length) {
      const inst = mine.find((i) => i.connected);
      return done(inst ? { rule: "user_assignment", instance: inst }
        : { rule: "user_assignment", error: error(104, "instance_disconnected", "assigned instances are disconnected") }, "user_assignment");
    }
  }
  trace.push({ rule: "user_assignment", outcome: "no_match" });

  const def = instances.find((i) => i.default);
  if (def && def.connected) return done({ rule: "default_instance", instance: def }, "default_instance");
  trace.push({ rule: "default_instance", outcome: def ? "fell_through" : "no_match" });

  const any = instances.find((i) => i.connected && (i.phone || "").trim());
  if (any) return done({ rule: "any_available", instance: any }, "any_available");
  return done({ rule: "any_available", error: error(106, "no_instance_available", "no connected instance") }, "any_available");
}

let counter = 0;
const prefix = Math.random().toString(16).slice(2, 10);

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/v1/select") {
    res.writeHead(404, { "content-type": "application/json" });
    return res.end('{"error":"not found"}');
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let request;
    try { request = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch (e) { request = undefined; }
    const d = select(request);
    const out = {
      decision_id: `${prefix}-${++counter}`, generation: 1, ok: Boolean(d.instance), rule: d.rule, body: d.body,
      ...(d.instance ? { instance: { id: d.instance.id, channel: d.instance.channel, index: d.instance.index, phone: d.instance.phone } }
        : { error: d.error }),
      trace: d.trace || [],
    };
    const status = d.error && d.error.code === 100 ? 400 : 200;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(out));
  });
});
server.listen(port, "127.0.0.1", () => console.error(`node: listening on http://127.0.0.1:${server.address().port}`));
