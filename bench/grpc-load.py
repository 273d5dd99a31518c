"""A gRPC load client on gRPC's C core (Debian's python3-grpcio), for bench/api.ts.

The @grpc/grpc-js client spends about 300 µs of CPU per call on the two cores it shares with the
receptor, so its rows measure the client more than the server. This one does the HTTP/2 and
gRPC work in C, as ghz or a Go or C++ client would, and shows what the receptor can serve.

usage: grpc-load.py HOST:PORT METHOD CONCURRENCY [REQUESTS_FILE | COUNT]

REQUESTS_FILE holds the requests' protobuf bytes, each after a 4-byte big-endian length (made by
bench/api.ts); with COUNT, every request is empty. Calls are made COUNT or file-size times, at
CONCURRENCY in flight, after a warm-up of empty ListCells calls. Prints one JSON object.
"""
import asyncio
import json
import os
import resource
import struct
import sys
import time

import grpc

WARM_UP = 300
RAW = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)


def read_requests(arg):
    if arg.isdigit():
        return [b""] * int(arg)
    with open(arg, "rb") as f:
        data = f.read()
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    return out


async def run(fn, requests, concurrency):
    latencies = [0.0] * len(requests)
    errors, first_error, next_i = 0, None, 0

    async def worker():
        nonlocal errors, first_error, next_i
        while next_i < len(requests):
            i = next_i
            next_i += 1
            start = time.perf_counter()
            try:
                await fn(requests[i], timeout=60)
            except grpc.RpcError as err:
                errors += 1
                first_error = first_error or f"{err.code().name}: {err.details()}"
            latencies[i] = (time.perf_counter() - start) * 1000

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return latencies, errors, first_error


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    address, method, concurrency, source = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    requests = read_requests(source)
    async with grpc.aio.insecure_channel(address) as channel:
        warm = channel.unary_unary("/diego.v1.CellService/ListCells", **RAW)
        await run(warm, [b""] * WARM_UP, concurrency)
        fn = channel.unary_unary(method, **RAW)
        cpu, started = cpu_seconds(), time.perf_counter()
        latencies, errors, first_error = await run(fn, requests, concurrency)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpuSeconds": cpu, "latencies": latencies, "errors": errors, "firstError": first_error}))


if __name__ == "__main__":
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    asyncio.run(main())
