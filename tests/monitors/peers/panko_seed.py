"""Record events into Panko through its own storage driver (run with the Panko venv's python).

usage: panko_seed.py PANKO_CONF < events.jsonl   (one {message_id, event_type, generated, traits: [[name,
type, value]], raw} per line; type is Panko's 1=text 2=int 3=float 4=datetime). Adapted from the shared
telemetry recipe's scripts/panko_seed.py.
"""

import datetime
import json
import sys

from panko import service, storage
from panko.storage import models

conf = service.prepare_service(argv=["panko_seed", "--config-file", sys.argv[1]])
conn = storage.get_connection_from_config(conf)
T = models.Trait


def _value(dtype, value):
    if dtype == T.DATETIME_TYPE:
        return datetime.datetime.fromisoformat(value)
    return value


events = []
for line in sys.stdin:
    if not line.strip():
        continue
    d = json.loads(line)
    events.append(models.Event(
        message_id=d["message_id"], event_type=d["event_type"],
        generated=datetime.datetime.fromisoformat(d["generated"]),
        traits=[T(n, t, _value(t, v)) for n, t, v in d.get("traits", [])],
        raw=d.get("raw") or {}))
conn.record_events(events)
print("recorded", len(events), flush=True)
