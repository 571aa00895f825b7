# A local stand-in for public.ecr.aws/lambda/python (which cannot be pulled here): Debian minbase + Python 3 +
# the real AWS Lambda runtime interface client, with AWS's conventions: LAMBDA_TASK_ROOT=/var/task,
# LAMBDA_RUNTIME_DIR=/var/runtime, ENTRYPOINT /lambda-entrypoint.sh, CMD = the handler.
ARG DEBIAN_BASE=diecast/debian-minbase:bookworm
FROM ${DEBIAN_BASE}
ENV LANG=C.UTF-8 \
    TZ=:/etc/localtime \
    LAMBDA_TASK_ROOT=/var/task \
    LAMBDA_RUNTIME_DIR=/var/runtime \
    PYTHONPATH=/var/runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /usr/share/doc/* /usr/share/man/*
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    python3 -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        --target /var/runtime awslambdaric==4.2.2
COPY docker/lambda-entrypoint.sh /lambda-entrypoint.sh
WORKDIR /var/task
ENTRYPOINT ["/lambda-entrypoint.sh"]
