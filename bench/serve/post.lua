-- wrk: POST one request (the contact_tag path: three rules consulted).
wrk.method = "POST"
wrk.body = '{"location":"shop","channel":"whatsapp","body":"Your invoice","contact":{"id":"c1","tags":["vip","wa: +1-555-BILLING"]}}'
wrk.headers["Content-Type"] = "application/json"
