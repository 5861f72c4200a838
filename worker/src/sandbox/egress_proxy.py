"""agentmill's egress proxy: the only way out of a network-enabled sandbox.

The sandbox sits on an internal Docker network (no route out, no address of the host); this
proxy sits on that network and on the worker's egress network. It serves HTTP CONNECT (HTTPS,
any TLS) and plain-HTTP requests with an absolute URI, resolves the destination itself and
connects only to addresses the policy permits: an address in AGENTMILL_EGRESS_ALLOW, else a
globally routable one that is not in AGENTMILL_EGRESS_DENY. Loopback, link-local (the cloud
metadata address 169.254.169.254), private, shared, reserved and multicast ranges are refused
unless the allow list names them. A refusal is a 403 whose body says why.
"""

import asyncio
import ipaddress
import os
import socket
import sys
import urllib.parse


def networks(var):
    out = []
    for item in os.environ.get(var, "").split(","):
        item = item.strip()
        if item:
            out.append(ipaddress.ip_network(item, strict=False))
    return out


ALLOW = networks("AGENTMILL_EGRESS_ALLOW")
DENY = networks("AGENTMILL_EGRESS_DENY")
PORT = int(os.environ.get("AGENTMILL_EGRESS_PORT", "3128"))
CONNECT_TIMEOUT = 30
HEAD_TIMEOUT = 30


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def permitted(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if any(ip.version == n.version and ip in n for n in ALLOW):
        return True
    if any(ip.version == n.version and ip in n for n in DENY):
        return False
    return ip.is_global and not ip.is_multicast


async def open_checked(host, port):
    """A connection to host:port on a permitted address, or (None, why)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return None, f"cannot resolve {host}: {e}"
    addresses = sorted({info[4][0] for info in infos})
    allowed = [a for a in addresses if permitted(a)]
    if not allowed:
        return None, f"{host}:{port} ({', '.join(addresses)}) is outside this worker's egress policy (sandbox_network.allow)"
    last = None
    for a in allowed:
        try:
            return await asyncio.wait_for(asyncio.open_connection(a, port), CONNECT_TIMEOUT), None
        except (OSError, asyncio.TimeoutError) as e:
            last = e
    return None, f"cannot connect to {host}:{port}: {last}"


async def refuse(writer, status, why):
    log(f"refused: {why}")
    body = f"agentmill egress proxy: {why}\n".encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    try:
        writer.write(head.encode() + body)
        await writer.drain()
    except OSError:
        pass
    writer.close()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except OSError:
            pass


async def handle(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    except asyncio.LimitOverrunError:
        return await refuse(writer, "431 Request Header Fields Too Large", "request head too large")
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        return await refuse(writer, "400 Bad Request", "not an HTTP request")
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            return await refuse(writer, "400 Bad Request", f"CONNECT {target}: expected host:port")
        conn, why = await open_checked(host, int(port))
        if conn is None:
            return await refuse(writer, "403 Forbidden", why)
        log(f"CONNECT {host}:{port}")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
    else:
        url = urllib.parse.urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            return await refuse(writer, "400 Bad Request", f"{method} {target}: a proxy request names an absolute http:// URL (use CONNECT for https)")
        port = url.port or 80
        conn, why = await open_checked(url.hostname, port)
        if conn is None:
            return await refuse(writer, "403 Forbidden", why)
        log(f"{method} {url.hostname}:{port}")
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        skip = ("proxy-connection", "proxy-authorization", "connection", "keep-alive")
        kept = [l for l in lines[1:] if l and l.split(":", 1)[0].strip().lower() not in skip]
        request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        conn[1].write(request.encode("latin-1"))
    up_reader, up_writer = conn
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    for w in (writer, up_writer):
        try:
            w.close()
        except OSError:
            pass


async def main():
    server = await asyncio.start_server(handle, host="0.0.0.0", port=PORT, limit=65536)
    log(f"agentmill egress proxy on :{PORT}; allow {[str(n) for n in ALLOW]}; deny {[str(n) for n in DENY]}")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
