"""A stock Python gRPC client (Debian's python3-grpcio) talking to the receptor.

No generated stubs: requests are protobuf bytes encoded by hand from proto/diego/v1/*.proto,
so this also checks the wire format is plain protobuf. Prints one JSON object.

usage: grpc_probe.py HOST:PORT MISSING_GUID NEW_GUID DOMAIN
"""
import json
import sys

import grpc


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number, payload):
    """A length-delimited field (strings and messages)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def failure(fn, request):
    try:
        fn(request, timeout=10)
    except grpc.RpcError as err:
        return {"code": err.code().name, "details": err.details()}
    return {"code": "OK"}


def main():
    address, missing, guid, domain = sys.argv[1:5]
    channel = grpc.insecure_channel(address)
    raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    get_task = channel.unary_unary("/diego.v1.TaskService/GetTask", **raw)
    create_task = channel.unary_unary("/diego.v1.TaskService/CreateTask", **raw)

    # TaskCreateRequest: task_guid=1, domain=2, stack=3, action=10 -> Action.run=1 -> RunAction.path=1
    create = (
        field(1, guid)
        + field(2, domain)
        + field(3, "lucid64")
        + field(10, field(1, field(1, "/bin/true")))
    )
    created = create_task(create, timeout=10)
    found = get_task(field(1, guid), timeout=10)
    print(
        json.dumps(
            {
                "missing": failure(get_task, field(1, missing)),
                "duplicate": failure(create_task, create),
                "invalid": failure(create_task, field(1, "bad guid")),
                "created_bytes": len(created),
                "found_hex": found.hex(),
                "found_contains_guid": guid.encode() in found,
            }
        )
    )
    channel.close()


if __name__ == "__main__":
    main()
