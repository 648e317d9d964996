#!/bin/bash
# StreamFunction's handler: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# starts this, waits for /healthz, then forwards each invocation to uvicorn as HTTP.
# The layer's packages are in /opt/python; boto3 comes from the runtime's own directory.
export PYTHONPATH="/opt/python:${LAMBDA_RUNTIME_DIR}:${LAMBDA_TASK_ROOT}"
exec python -m uvicorn app:app \
    --host 127.0.0.1 --port "${AWS_LWA_PORT:-8000}" \
    --no-access-log --log-level warning --lifespan off --timeout-keep-alive 3600
