# The serving image: onnxruntime + numpy + orjson, runtime/, serving/, the handler and the shipped model versions.
# No torch.
# Production base: AWS's Lambda Python 3.12 image (Amazon Linux 2023). `make image-test` builds this same file on a
# local stand-in with the same conventions (LAMBDA_TASK_ROOT=/var/task, /lambda-entrypoint.sh, CMD = handler).
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12
FROM ${BASE_IMAGE}

ARG MODEL_VERSION=v1.0
ENV MODEL_VERSION=${MODEL_VERSION} \
    MODEL_PATH=/var/task/models_onnx/${MODEL_VERSION} \
    LOG_LEVEL=INFO \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1

COPY requirements-runtime.txt docker/slim_site.py /tmp/build/
# The host's CA bundle reaches pip as a BuildKit secret (for TLS-intercepting proxies); it never lands in a layer.
# onnxruntime's own requirements (protobuf, flatbuffers, packaging) serve only its tools, not inference: --no-deps.
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    python3 -m pip install --no-cache-dir --disable-pip-version-check --no-compile --only-binary=:all: \
        --no-deps --target /var/task -r /tmp/build/requirements-runtime.txt \
    && python3 /tmp/build/slim_site.py /var/task \
    && rm -rf /tmp/build

COPY runtime/ /var/task/runtime/
COPY serving/ /var/task/serving/
COPY lambda/handler.py /var/task/
# Every shipped version (model.onnx, onnxruntime's cache when it ships one, the manifest naming both): MODEL_VERSION
# answers; SHADOW_MODEL_VERSION and AB_SPLIT may name another one (~1.5 MB each).
COPY models_onnx/ /var/task/models_onnx/
# Byte-compile at build time: nothing is compiled during a cold start.
RUN python3 -m compileall -q -j 0 /var/task

CMD ["handler.lambda_handler"]
