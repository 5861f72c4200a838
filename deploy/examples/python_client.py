#!/usr/bin/env python3
"""An agentmill client in Python, generated from the .proto files (the public contract).

    python deploy/examples/python_client.py --addr 127.0.0.1:50051 submit deploy/tasks/tasks.jsonl
    python deploy/examples/python_client.py --addr 127.0.0.1:50051 watch --count 10
    python deploy/examples/python_client.py --addr 127.0.0.1:50051 stats
    python deploy/examples/python_client.py --addr 127.0.0.1:50051 trajectory agentmill__calc-1 --rollout 0

Needs grpcio-tools (deploy/requirements.txt). The stubs are generated into a temporary folder
on each run, so the only input is proto/proto/agentmill/v1/coordinator.proto.
"""
import argparse
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto", "proto")


def load_stubs():
    out = tempfile.mkdtemp(prefix="agentmill-stubs-")
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}",
        os.path.join(PROTO_DIR, "agentmill", "v1", "coordinator.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out)
    from agentmill.v1 import coordinator_pb2, coordinator_pb2_grpc  # noqa: E402
    return coordinator_pb2, coordinator_pb2_grpc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--token", default=os.environ.get("AGENTMILL_TOKEN"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit", help="submit a JSONL file of tasks")
    s.add_argument("file")
    w = sub.add_parser("watch", help="print task events")
    w.add_argument("--count", type=int, default=0, help="stop after this many events (0 = never)")
    w.add_argument("task_ids", nargs="*")
    sub.add_parser("stats", help="cluster stats")
    t = sub.add_parser("trajectory", help="what an episode did: its record, from the stream")
    t.add_argument("task_id")
    t.add_argument("--rollout", type=int, default=0)
    t.add_argument("--attempt", type=int, default=0, help="0 = the latest attempt that published")
    args = ap.parse_args()

    pb, pb_grpc = load_stubs()
    channel = grpc.insecure_channel(args.addr)
    stub = pb_grpc.CoordinatorStub(channel)
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []

    if args.cmd == "submit":
        with open(args.file) as f:
            rows = [line for line in f if line.strip()]
        # A worker never opens a path a client names: the archives rows name travel with the
        # tasks, uploaded with PutContent and named content:<sha256>.
        base = os.path.dirname(os.path.abspath(args.file))
        uploaded = {}

        def put(path):
            if path not in uploaded:
                with open(path, "rb") as f:
                    data = f.read()
                chunks = (pb.ContentChunk(data=data[i:i + (1 << 20)]) for i in range(0, max(len(data), 1), 1 << 20))
                uploaded[path] = "content:" + stub.PutContent(chunks, metadata=metadata).sha256
            return uploaded[path]

        def localise(line):
            row = json.loads(line)
            archive = row.get("archive")
            if isinstance(archive, str) and not archive.startswith("content:"):
                path = os.path.join(base, archive)
                if os.path.isfile(path):
                    row["archive"] = put(path)
            return json.dumps(row)

        req = pb.SubmitTasksRequest(tasks=[pb.TaskInput(json_row=localise(r)) for r in rows])
        resp = stub.SubmitTasks(req, metadata=metadata)
        print(json.dumps({"accepted": list(resp.accepted), "existing": list(resp.existing),
                          "rejected": [{"row": e.row, "field": e.field, "reason": e.reason} for e in resp.rejected]}))
    elif args.cmd == "watch":
        n = 0
        for ev in stub.WatchEvents(pb.WatchEventsRequest(task_ids=args.task_ids), metadata=metadata):
            print(json.dumps({"task_id": ev.task_id, "rollout": ev.rollout, "attempt": ev.attempt,
                              "state": pb.TaskState.Name(ev.state), "worker_id": ev.worker_id}), flush=True)
            n += 1
            if args.count and n >= args.count:
                break
    elif args.cmd == "stats":
        s = stub.ClusterStats(pb.ClusterStatsRequest(), metadata=metadata)
        print(json.dumps({"tasks_by_state": dict(s.tasks_by_state), "workers": len(s.workers),
                          "results_by_resolution": dict(s.results_by_resolution)}))
    elif args.cmd == "trajectory":
        req = pb.GetTrajectoryRequest(task_id=args.task_id, rollout=args.rollout, attempt=args.attempt)
        try:
            resp = stub.GetTrajectory(req, metadata=metadata)
        except grpc.RpcError as e:
            # NOT_FOUND: nothing published yet, or trimmed; INVALID_ARGUMENT: out of range.
            print(json.dumps({"error": e.code().name, "detail": e.details()}))
            sys.exit(1)
        record = json.loads(resp.record_json)  # agentmill.trajectory/v1
        grading = record.get("grading") or {}
        print(json.dumps({"record_id": resp.record_id, "stream_id": resp.stream_id,
                          "exit_reason": record.get("exit_reason"), "resolution": grading.get("resolution"),
                          "messages": len(record.get("messages", [])),
                          "tool_calls": [c["function"]["name"] for m in record.get("messages", [])
                                         for c in m.get("tool_calls", [])]}))


if __name__ == "__main__":
    main()
