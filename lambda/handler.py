"""AWS Lambda entry point: ``handler.lambda_handler``.

INIT builds the application once (``serving/app.py``) from the environment (``serving/settings.py``: a bad value
fails INIT with ``ConfigurationError`` naming the variable), warms every model's path and freezes what it built;
a request only parses, validates, predicts and serialises.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

# The repository keeps this file in lambda/, below serving/ and runtime/; the image puts all three in /var/task.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(_ROOT, "serving")):
    sys.path.insert(1, _ROOT)

from serving.app import App, register_snapstart_hooks  # noqa: E402
from serving.settings import Settings  # noqa: E402

SETTINGS = Settings.from_env(os.environ)
logging.basicConfig(stream=sys.stderr, level=getattr(logging, SETTINGS.log_level), format="%(message)s")
APP = App(SETTINGS)  # INIT: a broken model folder fails here, not on a request
SNAPSTART_HOOKS = register_snapstart_hooks(APP)
APP.warm()
# Everything INIT built lives as long as the process: freeze it out of the garbage collector's generations, so that a
# collection during a request walks only the request's own objects (gc.collect() first would lengthen INIT).
gc.freeze()


def lambda_handler(event: object, context: object = None) -> dict:
    return APP.handle(event, context)
