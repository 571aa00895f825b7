"""AWS Lambda entry point of the explain function (T2): ``explain_handler.lambda_handler`` (not ``explain.py``: in
the image this file sits beside the ``explain`` package, whose name it would shadow).

INIT builds the explain application once (``explain/app.py``) from the same environment variables as the predict
function (``serving/settings.py``), warms it (one explanation) and freezes what it built; a request parses,
validates, predicts and explains.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

# The repository keeps this file in lambda/, below explain/, serving/ and runtime/; the image puts them in /var/task.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(_ROOT, "explain")):
    sys.path.insert(1, _ROOT)

from explain.app import App  # noqa: E402
from serving.app import register_snapstart_hooks  # noqa: E402
from serving.settings import Settings  # noqa: E402

SETTINGS = Settings.from_env(os.environ)
logging.basicConfig(stream=sys.stderr, level=getattr(logging, SETTINGS.log_level), format="%(message)s")
APP = App(SETTINGS)  # INIT: a model folder without explanation.json fails here, not on a request
SNAPSTART_HOOKS = register_snapstart_hooks(APP)
APP.warm()
gc.freeze()  # as the predict function: a collection during a request walks only the request's objects


def lambda_handler(event: object, context: object = None) -> dict:
    return APP.handle(event, context)
