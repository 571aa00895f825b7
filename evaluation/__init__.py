"""The statistics that judge a model on labelled rows, shared by the monitor and ``compare``.

``evaluation.policy`` holds the resampling policy (standard library only, so that a command's ``--help`` can show
it); ``evaluation.stats`` the statistics themselves.
"""
