"""Redis stream names shared by the API (producer) and the workers (consumers).

``FEEDBACK_STREAM`` carries one entry per accepted feedback event, appended by the API after
the event is committed to Neo4j. Fields (all strings): ``event_id``, ``user_id``, ``type``
(``search`` | ``view`` | ``click`` | ``purchase``), ``item_id`` (empty when none), ``query``
(normalized query text, empty when none), ``ts`` (event time, Unix seconds).
"""

from __future__ import annotations

FEEDBACK_STREAM = "dpgcn:feedback"
FEEDBACK_FIELDS = ("event_id", "user_id", "type", "item_id", "query", "ts")
