"""The Lambda application, importable from anywhere: settings from the environment (``settings``), the application
that answers events (``app``), the HTTP rules of proxy events and responses (``http``) and the request's log/EMF line
(``telemetry``). ``lambda/handler.py`` builds it at INIT; ``diecast invoke`` and the tests build it with explicit
settings."""
