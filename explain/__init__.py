"""Explanations of the served model: each reading's contribution to one part's log-odds of "defect", and the
readings' global importance. numpy + onnxruntime only, like the runtime it builds on."""
