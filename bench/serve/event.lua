-- wrk: POST one event (the JSON in the EVENT environment variable) to /v1/events.
wrk.method = "POST"
wrk.body = os.getenv("EVENT")
wrk.headers["Content-Type"] = "application/json"
