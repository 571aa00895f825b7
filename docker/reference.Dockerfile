# The original serving stack, for comparison only (never deployed from here): torch CPU + sklearn + numpy, the
# pickled originals and a handler like the original's, on the same base as the slim image.
ARG BASE_IMAGE=diecast/lambda-python:test
FROM ${BASE_IMAGE}
ENV REFERENCE_ROOT=/var/task
COPY build/image/wheels/ /tmp/wheels/
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    python3 -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: --target /var/task \
        /tmp/wheels/torch-2.13.0*.whl scikit-learn==1.9.1 numpy==2.4.6 \
    && rm -rf /tmp/wheels
COPY convert/ /var/task/convert/
# The conversion side reads the runtime's dependency-free layout and contracts (runtime/artifacts.py, contracts.py).
COPY runtime/ /var/task/runtime/
COPY deployment_models/v1.0/ /var/task/deployment_models/v1.0/
COPY benchmarks/reference_handler.py /var/task/
RUN python3 -m compileall -q -j 0 /var/task/convert /var/task/runtime /var/task/reference_handler.py
CMD ["reference_handler.lambda_handler"]
