-- wrk: POST one request to a generated world (switchboard/examples/generate.rs):
-- location loc_1 exists in every size, and the tag names its instance l1-i3 (index 2) on
-- WhatsApp (the contact_tag path: three rules consulted).
wrk.method = "POST"
wrk.body = '{"location":"loc_1","channel":"whatsapp","body":"Your invoice","contact":{"id":"c1","tags":["vip","wa: +1 555 00000103"]}}'
wrk.headers["Content-Type"] = "application/json"
