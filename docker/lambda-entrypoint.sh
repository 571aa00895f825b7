#!/bin/sh
# Same contract as AWS's /lambda-entrypoint.sh: the handler name arrives as CMD, the Runtime API address in
# AWS_LAMBDA_RUNTIME_API; the task root is the working directory.
cd "${LAMBDA_TASK_ROOT:-/var/task}" || exit 1
exec /usr/bin/python3 -m awslambdaric "$@"
