"""The same chain as rules.yaml (manual_override, temporary_switch,
contact_tag, user_assignment, default_instance, any_available), written in
plain Python the way an integrator would, over the example world. Only for
the benchmark: the baseline the binding is measured against."""

import re

WORLD = {
    "shop": [
        {"id": "wa-orders", "channel": "whatsapp", "index": 1, "phone": "+1-555-ORDERS", "connected": True, "users": ["u_orders"]},
        {"id": "wa-support", "channel": "whatsapp", "index": 2, "phone": "+1-555-SUPPORT", "connected": True, "default": True},
        {"id": "wa-billing", "channel": "whatsapp", "index": 3, "phone": "+1-555-BILLING", "connected": True},
        {"id": "wa-legacy", "channel": "whatsapp", "index": 4, "phone": "+1-555-0104", "connected": False},
        {"id": "im-support", "channel": "imessage", "index": 1, "phone": "+1-555-0201", "connected": True, "default": True},
        {"id": "im-billing", "channel": "imessage", "index": 2, "phone": "+1-555-0202", "connected": True},
        {"id": "sms-main", "channel": "sms", "index": 1, "phone": "+1-555-0301", "connected": True, "default": True},
    ],
    "agency": [
        {"id": "wa-client-a", "channel": "whatsapp", "index": 1, "phone": "+44 20 7946 0001", "connected": True},
        {"id": "wa-client-b", "channel": "whatsapp", "index": 2, "phone": "+44 20 7946 0002", "connected": True, "users": ["u_team_b1", "u_team_b2"]},
        {"id": "wa-main", "channel": "whatsapp", "index": 3, "phone": "+44 20 7946 0003", "connected": True, "default": True},
        {"id": "wa-spare", "channel": "whatsapp", "index": 4, "phone": "+44 20 7946 0004", "connected": False, "users": ["u_away"]},
        {"id": "im-main", "channel": "imessage", "index": 1, "phone": "+44 20 7946 0101", "connected": False, "default": True},
    ],
}

CHANNELS = {
    "whatsapp": {"code": "WA", "prefix": "wa:", "override": True, "temp": False},
    "imessage": {"code": "IM", "prefix": "im:", "override": True, "temp": True},
    "sms": {"code": "SMS", "prefix": "sms:", "override": False, "temp": False},
}
PATTERN = re.compile(
    r"\{\{[ \t]*(TEMP-)?(WA|IM)#([0-9]+)[ \t]*\}\}|\{[ \t]*(TEMP-)?(WA|IM)#([0-9]+)[ \t]*\}", re.IGNORECASE
)
KEYPAD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "22233344455566677778889999")
NOT_ALNUM = re.compile(r"[^0-9A-Z]")
TRAILING = re.compile(r"[ \t]+$")
LEADING = re.compile(r"[ \t]+")


def digits(phone):
    return NOT_ALNUM.sub("", phone.upper()).translate(KEYPAD)


def scan(body):
    """The patterns found, and the body with each stripped (taking the whitespace after it, else before it)."""
    found, out, last = [], [], 0
    for m in PATTERN.finditer(body):
        found.append({"temp": bool(m.group(1) or m.group(4)), "code": (m.group(2) or m.group(5)).upper(),
                      "index": int(m.group(3) or m.group(6))})
        start, end = m.start(), m.end()
        after = LEADING.match(body, end)
        if after:
            end = after.end()
        else:
            before = TRAILING.search(body, last, start)
            if before:
                start = before.start()
        out.append(body[last:start])
        last = end
    out.append(body[last:])
    return found, "".join(out)


def fail(code, kind, message):
    return {"code": code, "kind": kind, "message": message}


def select(request):
    channel = CHANNELS.get(request["channel"])
    if channel is None:
        return {"ok": False, "rule": None, "body": request["body"], "error": fail(100, "unknown_channel", "unknown channel"), "trace": []}
    everything = request.get("instances") or WORLD.get(request["location"])
    if everything is None:
        return {"ok": False, "rule": None, "body": request["body"], "error": fail(100, "unknown_location", "unknown location"), "trace": []}
    instances = [i for i in everything if i["channel"] == request["channel"]]
    if any("index" not in i for i in instances):  # unnumbered: 1, 2, ... in order
        instances = [dict(i, index=n) for n, i in enumerate(instances, 1)]
    instances.sort(key=lambda i: i["index"])
    found, body = scan(request["body"])
    trace = []

    def done(rule, result):
        if "id" in result:
            trace.append({"rule": rule, "outcome": "selected"})
            instance = {k: result[k] for k in ("id", "channel", "index", "phone")}
            return {"ok": True, "rule": rule, "body": body, "instance": instance, "trace": trace}
        trace.append({"rule": rule, "outcome": "failed"})
        return {"ok": False, "rule": rule, "body": body, "error": result, "trace": trace}

    def by_index(rule, code, temp):
        mine = [p for p in found if p["code"] == channel["code"] and p["temp"] == temp]
        if not mine or not (channel["temp"] if temp else channel["override"]):
            return None
        if len({p["index"] for p in mine}) > 1:
            return done(rule, fail(code, "conflicting_override", "the body names several instances"))
        instance = next((i for i in instances if i["index"] == mine[0]["index"]), None)
        if instance is None:
            return done(rule, fail(code, "instance_not_found", f"no instance #{mine[0]['index']}"))
        if not instance.get("connected"):
            return done(rule, fail(code, "instance_disconnected", f"{instance['id']} is disconnected"))
        return done(rule, instance)

    for rule, code, temp in (("manual_override", 101, False), ("temporary_switch", 102, True)):
        decision = by_index(rule, code, temp)
        if decision:
            return decision
        trace.append({"rule": rule, "outcome": "no_match"})

    contact = request.get("contact") or {}
    tagged = []
    for tag in contact.get("tags") or []:
        if not tag.lower().startswith(channel["prefix"]) or not any(c.isdigit() for c in tag):
            continue
        number = digits(tag[len(channel["prefix"]):])
        tagged.extend(i for i in instances if digits(i["phone"]) == number)
    if tagged:
        usable = next((i for i in tagged if i.get("connected")), None)
        return done("contact_tag", usable or fail(103, "instance_disconnected", "the tagged instances are disconnected"))
    trace.append({"rule": "contact_tag", "outcome": "no_match"})

    user = contact.get("assigned_user")
    assigned = [i for i in instances if user and user in i.get("users", ())]
    if assigned:
        usable = next((i for i in assigned if i.get("connected")), None)
        return done("user_assignment", usable or fail(104, "instance_disconnected", "the assigned user's instances are disconnected"))
    trace.append({"rule": "user_assignment", "outcome": "no_match"})

    default = next((i for i in instances if i.get("default")), None)
    if default and default.get("connected"):
        return done("default_instance", default)
    trace.append({"rule": "default_instance", "outcome": "fell_through" if default else "no_match"})

    usable = next((i for i in instances if i.get("connected") and i.get("phone", "").strip()), None)
    return done("any_available", usable or fail(106, "no_instance_available", "no connected instance with a phone"))
