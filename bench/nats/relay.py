#!/usr/bin/env python3
"""NATS JetStream side of liandong's relay and catch-up benchmarks (issue 6).

Three nats-server processes, the same shape as liandong's province -> city -> county:
  province: the hub, JetStream domain "prov", stream PROV (file storage) on guidance.>
  city:     a leaf node of the province, domain "city", stream CITY mirroring PROV across
            the leaf connection (external API $JS.prov.API)
  county:   a leaf node of the city, domain "county", stream COUNTY mirroring CITY
            ($JS.city.API)

relay:   everything up; publish N messages of 300 bytes at the province (JetStream publish,
         acknowledged, pipelined); time from the first publish until COUNTY holds N.
catchup: the county's server is stopped; N messages published and mirrored to CITY; the
         county's server starts again on its store; time until COUNTY holds all N.

Prints one JSON object. Needs nats-server on PATH and nats-py.
"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import nats
from nats.js.api import ExternalStream, StorageType, StreamConfig, StreamSource

PAYLOAD = (b"payload " + b"x" * 300)[:300]
ACKED = os.environ.get("NATS_ACKED_PUBLISH") == "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, root, name, domain, leaf_listen=None, remote=None):
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        conf = [
            f"server_name: {name}",
            f"listen: 127.0.0.1:{self.port}",
            "jetstream {",
            f'  store_dir: "{self.dir}/js"',
            f"  domain: {domain}",
            "}",
            "leafnodes {",
        ]
        if leaf_listen:
            conf.append(f"  listen: 127.0.0.1:{leaf_listen}")
        if remote:
            conf.append(f'  remotes = [ {{ url: "nats-leaf://127.0.0.1:{remote}" }} ]')
        conf.append("}")
        self.conf = os.path.join(self.dir, "server.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen(
            ["nats-server", "-c", self.conf], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"


async def count(js, stream):
    try:
        info = await js.stream_info(stream)
        return info.state.messages
    except Exception:
        return 0


async def wait_count(js, stream, n, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if await count(js, stream) >= n:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{stream} did not reach {n}")


async def publish(nc, js, n, acked):
    """N messages to guidance.* at the province. acked: JetStream publish, each acknowledged
    (pipelined 2,048 at a time); else core NATS publish (the stream captures the subject),
    then a flush: the fastest way in."""
    if not acked:
        for i in range(n):
            await nc.publish(f"guidance.{i % 64}", PAYLOAD)
        await nc.flush()
        return
    window = 2048
    pending = []
    for i in range(n):
        pending.append(await js.publish_async(f"guidance.{i % 64}", PAYLOAD))
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending = []
    if pending:
        await asyncio.gather(*pending)


async def setup(root, run):
    hub_leaf = free_port()
    city_leaf = free_port()
    prov = Server(root, f"prov{run}", "prov", leaf_listen=hub_leaf)
    city = Server(root, f"city{run}", "city", leaf_listen=city_leaf, remote=hub_leaf)
    county = Server(root, f"county{run}", "county", remote=city_leaf)
    for s in (prov, city, county):
        s.start()
    await asyncio.sleep(1.0)  # leaf connections
    nc_p = await nats.connect(prov.url)
    js_p = nc_p.jetstream()
    await js_p.add_stream(
        StreamConfig(name="PROV", subjects=["guidance.>"], storage=StorageType.FILE)
    )
    nc_c = await nats.connect(city.url)
    js_c = nc_c.jetstream()
    await js_c.add_stream(
        StreamConfig(
            name="CITY",
            storage=StorageType.FILE,
            mirror=StreamSource(name="PROV", external=ExternalStream(api="$JS.prov.API")),
        )
    )
    nc_k = await nats.connect(county.url)
    js_k = nc_k.jetstream()
    await js_k.add_stream(
        StreamConfig(
            name="COUNTY",
            storage=StorageType.FILE,
            mirror=StreamSource(name="CITY", external=ExternalStream(api="$JS.city.API")),
        )
    )
    return (prov, city, county), (nc_p, js_p), (nc_c, js_c), (nc_k, js_k)


async def relay(root, n):
    servers, (nc_p, js_p), (nc_c, js_c), (nc_k, js_k) = await setup(root, "r")
    try:
        t0 = time.perf_counter()
        await publish(nc_p, js_p, n, ACKED)
        published = time.perf_counter() - t0
        await wait_count(js_k, "COUNTY", n)
        total = time.perf_counter() - t0
        return {
            "events": n,
            "seconds": total,
            "events_per_s": n / total,
            "publish_events_per_s": n / published,
        }
    finally:
        for nc in (nc_p, nc_c, nc_k):
            await nc.close()
        for s in reversed(servers):
            s.stop()


async def catchup(root, n):
    servers, (nc_p, js_p), (nc_c, js_c), (nc_k, js_k) = await setup(root, "c")
    prov, city, county = servers
    try:
        await nc_k.close()
        county.stop()
        await publish(nc_p, js_p, n, ACKED)
        await wait_count(js_c, "CITY", n)
        t0 = time.perf_counter()
        county.start()
        nc_k = await nats.connect(county.url)
        js_k = nc_k.jetstream()
        await wait_count(js_k, "COUNTY", n)
        total = time.perf_counter() - t0
        return {"events": n, "seconds": total, "events_per_s": n / total}
    finally:
        for nc in (nc_p, nc_c, nc_k):
            try:
                await nc.close()
            except Exception:
                pass
        for s in reversed(servers):
            s.stop()


async def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    which = sys.argv[2:] or ["relay", "catchup"]
    root = tempfile.mkdtemp(prefix="liandong-nats-")
    out = {"nats_server": subprocess.run(["nats-server", "--version"], capture_output=True, text=True).stdout.strip()}
    try:
        if "relay" in which:
            out["relay"] = await relay(root, n)
        if "catchup" in which:
            out["catchup"] = await catchup(root, n)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
