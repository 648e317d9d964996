"""X-Ray tracing for the buffered functions (Powertools Tracer).

Kept out of the modules every function imports: the X-Ray SDK adds about
0.2 s to a cold start, which the SnapStart functions pay once, at publish
time. DynamoDB calls show as subsegments (botocore is patched); the Claude
call is the rest of the handler's time. The streaming function is traced by
Lambda itself (Tracing: Active) without the SDK, as its app runs outside the
runtime's invocation context.
"""

from __future__ import annotations

from aws_lambda_powertools import Tracer

tracer = Tracer(patch_modules=("botocore",))
