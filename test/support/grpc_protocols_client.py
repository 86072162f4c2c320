"""A real gRPC client (Debian's python3-grpcio) for the waypoint's protocol tests: unary, server
streaming, client streaming and bidi streaming calls on test/fixtures/protocols.proto, with request
metadata, and what came back (messages, initial metadata, trailing metadata, status) printed as one
JSON line. Stubs are generated at run time with grpc_tools.protoc into a temporary directory.

usage: grpc_protocols_client.py PROTO TARGET
"""
import json
import os
import queue
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

TIMEOUT = 20


def now_ms():
    return int(time.time() * 1000)


def stubs(proto):
    out = tempfile.mkdtemp(prefix="ambit-grpc-stubs-")
    folder, name = os.path.split(os.path.abspath(proto))
    rc = protoc.main(
        ["protoc", f"-I{folder}", f"--python_out={out}", f"--grpc_python_out={out}", name]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed on {proto}: {rc}")
    sys.path.insert(0, out)
    base = name[: -len(".proto")]
    return __import__(f"{base}_pb2"), __import__(f"{base}_pb2_grpc")


def meta(md):
    """Metadata as a JSON-friendly dict (binary values as latin-1 text)."""
    out = {}
    for k, v in md or ():
        out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out


def status_of(call_or_err):
    code = call_or_err.code()
    return {"code": code.value[0], "name": code.name, "details": call_or_err.details()}


REQUEST_METADATA = (("x-client-meta", "hello-from-python"), ("x-token-bin", b"\x00\x01\xfe\xff"))


def main():
    _, proto, target = sys.argv
    pb, pb_grpc = stubs(proto)
    result = {}
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        stub = pb_grpc.EchoStub(channel)

        # Unary, OK.
        reply, call = stub.Unary.with_call(
            pb.Msg(text="ping"), metadata=REQUEST_METADATA, timeout=TIMEOUT
        )
        result["unary"] = {
            "text": reply.text,
            "initial": meta(call.initial_metadata()),
            "trailing": meta(call.trailing_metadata()),
            "status": status_of(call),
        }

        # Unary, a non-OK status with a message and trailing metadata.
        try:
            stub.Unary.with_call(pb.Msg(text="fail"), metadata=REQUEST_METADATA, timeout=TIMEOUT)
            result["unary_error"] = {"status": {"code": 0}}
        except grpc.RpcError as err:
            result["unary_error"] = {
                "status": status_of(err),
                "initial": meta(err.initial_metadata()),
                "trailing": meta(err.trailing_metadata()),
            }

        # Unary, a non-OK status before any response header (a trailers-only response).
        try:
            stub.Unary.with_call(pb.Msg(text="early"), metadata=REQUEST_METADATA, timeout=TIMEOUT)
            result["unary_early"] = {"status": {"code": 0}}
        except grpc.RpcError as err:
            result["unary_early"] = {
                "status": status_of(err),
                "trailing": meta(err.trailing_metadata()),
            }

        # A method that an AuthorizationPolicy denies: the waypoint's own answer (no codegen here).
        try:
            channel.unary_unary("/ambit.test.protocols.Echo/Denied")(
                b"", metadata=REQUEST_METADATA, timeout=TIMEOUT
            )
            result["denied"] = {"status": {"code": 0}}
        except grpc.RpcError as err:
            result["denied"] = {"status": status_of(err)}

        # Server streaming: messages are sent 200 ms apart; record when each arrives here.
        call = stub.ServerStream(pb.Msg(text="tick", count=5), metadata=REQUEST_METADATA, timeout=TIMEOUT)
        got = []
        for m in call:
            got.append({"text": m.text, "at": now_ms()})
        result["server_stream"] = {
            "messages": got,
            "initial": meta(call.initial_metadata()),
            "trailing": meta(call.trailing_metadata()),
            "status": status_of(call),
        }

        # Server streaming that fails after two messages.
        call = stub.ServerStream(pb.Msg(text="fail", count=2), metadata=REQUEST_METADATA, timeout=TIMEOUT)
        got = []
        try:
            for m in call:
                got.append(m.text)
        except grpc.RpcError:
            pass
        result["server_stream_error"] = {
            "messages": got,
            "trailing": meta(call.trailing_metadata()),
            "status": status_of(call),
        }

        # Client streaming: messages sent 200 ms apart; the server tells when each arrived there.
        def paced():
            for i in range(5):
                if i:
                    time.sleep(0.2)
                yield pb.Msg(text=f"part{i}")

        reply, call = stub.ClientStream.with_call(paced(), metadata=REQUEST_METADATA, timeout=TIMEOUT)
        result["client_stream"] = {
            "text": reply.text,
            "count": reply.count,
            "seen_at": list(reply.seen_at),
            "initial": meta(call.initial_metadata()),
            "trailing": meta(call.trailing_metadata()),
            "status": status_of(call),
        }

        # Big messages both ways: 32 x 256 KiB down (server stream) and up (client stream).
        t0 = time.time()
        call = stub.ServerStream(pb.Msg(text="big", count=32), timeout=TIMEOUT)
        sizes = [len(m.text) for m in call]
        down_s = time.time() - t0
        chunk = "y" * (256 * 1024)
        t0 = time.time()
        reply = stub.ClientStream(iter([pb.Msg(text=chunk) for _ in range(32)]), timeout=TIMEOUT)
        result["big"] = {
            "down": {"messages": len(sizes), "bytes": sum(sizes), "seconds": down_s},
            "up": {"messages": reply.count, "bytes": int(reply.text), "seconds": time.time() - t0},
            "status": {"code": 0},
        }

        # Bidi, ping-pong: the next message is sent only after the previous reply came back, which
        # deadlocks (and times out) if anything on the way buffers either direction.
        replies = queue.Queue()

        def pingpong():
            for i in range(5):
                yield pb.Msg(text=f"ping{i}")
                try:
                    replies.get(timeout=TIMEOUT)
                except queue.Empty:
                    return

        call = stub.Bidi(pingpong(), metadata=REQUEST_METADATA, timeout=TIMEOUT)
        got = []
        for m in call:
            got.append(m.text)
            replies.put(m.text)
        result["bidi"] = {
            "messages": got,
            "initial": meta(call.initial_metadata()),
            "trailing": meta(call.trailing_metadata()),
            "status": status_of(call),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
