"""The operator UI: a Streamlit page on the serving application, for people who never write JSON.

``ui.client`` is the one client with two back ends (the handler in-process, or the deployed API signed with SigV4);
``ui.form`` is what the page knows of the readings (groups, units, training ranges, the sample part); ``ui.parts``
turns a CSV into batch requests and their answers into a table; ``ui.app`` is the page. Never in the Lambda image:
streamlit, botocore and pyarrow come with the ``ui`` extra (``requirements-ui.txt``).
"""
