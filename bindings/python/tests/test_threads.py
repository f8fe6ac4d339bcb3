import json
from concurrent.futures import ThreadPoolExecutor

import switchboard
from conftest import RULES, WORLD


def test_four_threads_select_concurrently_with_correct_results(cli_decisions, request_lines):
    engine = switchboard.Engine.open(RULES, world=WORLD)
    parsed = []
    for line in request_lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            parsed.append(None)

    def work(_):
        wrong = 0
        for _round in range(200):
            for i, line in enumerate(request_lines):
                if json.loads(engine.select_json(line)) != cli_decisions[i]:
                    wrong += 1
                if parsed[i] is not None and engine.select(parsed[i]) != cli_decisions[i]:
                    wrong += 1
            if engine.select_many([p for p in parsed if p is not None]) != [
                d for p, d in zip(parsed, cli_decisions) if p is not None
            ]:
                wrong += 1
        return wrong

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(work, range(4))) == [0, 0, 0, 0]
    engine.close()
