"""A DMS vendor's client of the agent's local capture API (hamgam.agent.v1), from the .proto
files alone: `grpc_tools.protoc` generates the stubs into a temporary folder, then the client
calls a running `dealer-agent run` the way docs/local-api.md shows, and prints what it saw as
one JSON object for tests/tests/local_api.rs to check.

    python3 local_api_client.py PROTO_DIR ADDR TOKEN_FILE VINS_JSON
"""

import collections
import json
import os
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc


def generate(proto_dir, out_dir):
    for name in ("hamgam/record/v1/record.proto", "hamgam/agent/v1/agent.proto"):
        code = protoc.main(["protoc", f"-I{proto_dir}", f"-I{protoc_include()}",
                            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", name])
        if code != 0:
            raise SystemExit(f"protoc failed on {name}")
    sys.path.insert(0, out_dir)


def protoc_include():
    import grpc_tools
    return os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")


def main():
    proto_dir, addr, token_file, vins = sys.argv[1:5]
    vins = json.loads(vins)
    out = tempfile.mkdtemp(prefix="hamgam-stubs-")
    generate(proto_dir, out)
    from hamgam.agent.v1 import agent_pb2 as agent
    from hamgam.agent.v1 import agent_pb2_grpc as agent_grpc
    from hamgam.record.v1 import record_pb2 as record
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    token = open(token_file).read().strip()
    auth = [("authorization", f"Bearer {token}")]
    channel = grpc.insecure_channel(addr)
    capture = agent_grpc.LocalCaptureStub(channel)
    seen = {}

    try:
        capture.Status(agent.StatusRequest(), metadata=[("authorization", "Bearer wrong")])
        seen["wrong_token"] = "OK"
    except grpc.RpcError as e:
        seen["wrong_token"] = e.code().name

    def order(n, vin):
        return agent.Submission(
            staff_id="dms-user-7",
            repair_order=record.RepairOrder(
                ro_number=f"RO-{n}", vin=vin, owner_ref=f"C-{n}", driver_ref=f"C-{n}",
                opened_at_ms=1_700_000_000_000 + n * 3_600_000, odometer_in_km=1000 * n,
                pay_type=record.PAY_TYPE_CUSTOMER, advisor_id="dms-user-7",
                job_lines=[record.JobLine(line_number=1, labor_op_code=f"OP-{n}")]),
            origin=record.Origin(source_system="dms:rayan", source_record_id=f"R-{n}",
                                 created_at_ms=1_700_000_000_000 + n * 3_600_000 + 60_000))

    batch = agent.SubmitBatchRequest(submissions=[order(i + 1, v) for i, v in enumerate(vins)])
    first = capture.SubmitBatch(batch, metadata=auth)
    seen["first"] = [
        {"outcome": agent.SubmitOutcome.Name(r.outcome), "seq": r.seq,
         "warnings": [w.rule_id for w in r.warnings],
         "reasons": [{"code": w.reason_code, "args": dict(w.reason_args),
                      "en": w.reason_en} for w in r.warnings]}
        for r in first.results
    ]
    again = capture.SubmitBatch(batch, metadata=auth)
    seen["again"] = [agent.SubmitOutcome.Name(r.outcome) for r in again.results]

    # The DMS changed R-1 (another odometer reading): one record, a correction of seq 1.
    changed = order(1, vins[0])
    changed.repair_order.odometer_in_km = 1500
    one = capture.Submit(agent.SubmitRequest(submission=changed), metadata=auth).result
    seen["changed"] = {"outcome": agent.SubmitOutcome.Name(one.outcome), "seq": one.seq,
                       "corrected_seq": one.corrected_seq}

    live = agent.Submission(staff_id="s-1", lead=record.Lead(lead_ref="L-1", customer_ref="C-1",
                                                              contacted_at_ms=1_700_000_000_000))
    try:
        capture.SubmitBatch(agent.SubmitBatchRequest(submissions=[order(9, vins[0]), live]),
                            metadata=auth)
        seen["mixed"] = "OK"
    except grpc.RpcError as e:
        seen["mixed"] = [e.code().name, e.details()]

    # Follow the verdicts until every record has one (each call waits for new ones).
    verdicts, cursor = {}, 0
    deadline = time.monotonic() + 90
    while len(verdicts) < len(vins) + 1 and time.monotonic() < deadline:
        reply = capture.Verdicts(agent.VerdictsRequest(after_cursor=cursor, wait_ms=20_000),
                                 metadata=auth)
        cursor = reply.cursor
        for v in reply.verdicts:
            verdicts[str(v.seq)] = {"outcome": record.Outcome.Name(v.outcome),
                                    "rules": sorted(f.rule_id for f in v.findings)}
    seen["verdicts"] = verdicts
    seen["cursor"] = cursor
    status = capture.Status(agent.StatusRequest(), metadata=auth)
    seen["status"] = {"last_seq": status.last_seq, "acked_seq": status.acked_seq,
                      "pending": status.pending}

    # Server reflection (what grpcurl uses), with the token on every call.
    database = ProtoReflectionDescriptorDatabase(channel_with_auth(addr, auth))
    seen["services"] = sorted(database.get_services())
    print(json.dumps(seen))


class _CallDetails(
        collections.namedtuple("_CallDetails",
                               ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                                "compression")),
        grpc.ClientCallDetails):
    pass


class _AuthInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the bearer token to every call of a channel."""

    def __init__(self, auth):
        self.auth = auth

    def _details(self, d):
        metadata = list(d.metadata or []) + self.auth
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def channel_with_auth(addr, auth):
    return grpc.intercept_channel(grpc.insecure_channel(addr), _AuthInterceptor(auth))


if __name__ == "__main__":
    main()
