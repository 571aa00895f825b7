# The scheduled monitor job (python -m monitor on AWS Lambda): its own image, so the serving image stays as small
# as it is. Build from the repository root:
#   DOCKER_BUILDKIT=1 docker build -f docker/monitor.Dockerfile --build-arg MODEL_VERSION=v1.0 \
#     --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t diecast-t1-monitor:v1.0 .
# The model folder is copied for its manifest (the training quantiles, the test F1, trained_at); the ONNX file is
# not loaded by the monitor.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12
FROM ${BASE_IMAGE}
ARG MODEL_VERSION=v1.0
COPY requirements-runtime.txt requirements-monitor.txt /tmp/req/
RUN --mount=type=secret,id=cacert \
    PIP_CERT=/run/secrets/cacert pip install --no-cache-dir --target /var/task -r /tmp/req/requirements-monitor.txt
COPY monitor/ /var/task/monitor/
COPY evaluation/ /var/task/evaluation/
COPY runtime/ /var/task/runtime/
COPY diecast/ /var/task/diecast/
COPY models_onnx/${MODEL_VERSION}/manifest.json /var/task/models_onnx/${MODEL_VERSION}/manifest.json
ENV MODEL_DIR=/var/task/models_onnx/${MODEL_VERSION} MPLCONFIGDIR=/tmp/matplotlib HOME=/tmp
CMD ["monitor.aws.handler"]
