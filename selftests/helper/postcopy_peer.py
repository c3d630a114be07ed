#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Misbehaving postcopy peers for the postcopy tests.

postcopy_peer.py unrequested PORT [REGION_PAGES]
    A source: valid handshake with postcopy and preempt, switches to
    postcopy at once, then sends a page on the preempt channel that the
    destination never requested.  The listener must drop it.
postcopy_peer.py slowreplies PORT REGION_PAGES
    A source that streams every page in the background (16 per packet,
    paced) but holds its preempt replies until it has seen 1100 requests
    or 4 s passed, then answers them all: a guest faulting right behind the
    background stream runs ahead of the replies.  Prints how many requests
    it saw before replying.
postcopy_peer.py lateend PORT REGION_PAGES LISTENER_PID
    A source that sends every page in the background and completes, then,
    once the destination has ended the return path, holds the preempt
    channel's END for a second.  Prints the CPU time the listener spent in
    that second (ms): a destination waiting for the END must sleep.
postcopy_peer.py latemarker PORT
    A source whose multifd channel reaches the postcopy marker 0.3 s after
    POSTCOPY came on the main channel.  Prints "resumed" once the
    destination answers RESUMED.
postcopy_peer.py badreq PORT
    A destination listening on PORT: accepts the session and the switch,
    answers RESUMED, then requests a page past the end of guest RAM on the
    return path.  The source must drop it.
"""
import os
import socket
import struct
import sys
import threading
import time

import vmig_auth

MAGIC = 0x47494D56
(HELLO, HELLO_REPLY, PAGES, END, ROUND, COMPLETE, RESUMED, ERROR, NOP,
 DEVICES, DEVSTATE, DISCARD, POSTCOPY, REQ, DONE) = range(1, 16)
MAIN, MULTIFD, PREEMPT, RETURN = 1, 2, 3, 4
CAPS = 1 | 2 | 4 | 8 | 16


def chan_hdr(kind, session, index=0):
    return struct.pack("<IHHQIIQ", MAGIC, 1, kind, session, index, 0, 0)


def pkt(ptype, payload=b""):
    return struct.pack("<HHI", ptype, 0, len(payload)) + payload


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def recv_pkt(s):
    t, _, n = struct.unpack("<HHI", recv_exact(s, 8))
    return t, recv_exact(s, n) if n else b""


def drain(s):
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass


def switched(port, pages, drain_return, marker_delay=0):
    """A source's session up to the destination's RESUMED: (main, multifd, return, preempt)."""
    session = 0x1234567890ABCDEF
    secrets = {}

    def conn():
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        secrets[c] = vmig_auth.client(c)
        return c

    def bound(c, kind, index=0):
        h = chan_hdr(kind, session, index)
        c.sendall(h + vmig_auth.channel_proof(key, h, secrets[c]))

    s = conn()
    s.sendall(chan_hdr(MAIN, session))
    key = vmig_auth.session_key(secrets[s], session)
    s.sendall(pkt(HELLO, struct.pack("<IIQIIII", 1, 1, CAPS, 4096, 1, 1, 0) +
                  struct.pack("<Q", pages)))
    t, body = recv_pkt(s)
    if t != HELLO_REPLY or struct.unpack("<i", body[:4])[0] != 0:
        sys.exit("handshake refused: " + body[16:].decode(errors="replace"))
    m, r, p = conn(), conn(), conn()
    bound(m, MULTIFD, 0)
    bound(r, RETURN)
    bound(p, PREEMPT)
    if drain_return:
        threading.Thread(target=drain, args=(r,), daemon=True).start()
    if marker_delay:
        # POSTCOPY on the main channel first: the listener must wait for the
        # multifd channel to reach its marker, not give up.
        s.sendall(pkt(POSTCOPY, struct.pack("<Q", 0)))
        time.sleep(marker_delay)
        m.sendall(pkt(POSTCOPY))
    else:
        m.sendall(pkt(POSTCOPY))
        s.sendall(pkt(POSTCOPY, struct.pack("<Q", 0)))
    while True:
        t, body = recv_pkt(s)
        if t == RESUMED:
            return s, m, r, p
        if t == ERROR:
            sys.exit("destination: " + body[8:].decode(errors="replace"))


def unrequested(port, pages):
    s, m, r, p = switched(port, pages, True)
    p.sendall(pkt(PAGES, struct.pack("<IIQ", 0, 1, 5) + b"\x01" * 4096))
    time.sleep(0.5)
    try:
        t, body = recv_pkt(s)
        print("destination said:", body[8:].decode(errors="replace"))
    except (OSError, EOFError):
        print("destination closed the connection")


def slowreplies(port, pages):
    s, m, r, p = switched(port, pages, False)
    reqs = []
    lock = threading.Lock()

    def read_requests():
        try:
            while True:
                t, body = recv_pkt(r)
                if t != REQ:
                    return
                with lock:
                    reqs.append(struct.unpack("<IIQ", body)[2])
        except (OSError, EOFError):
            pass

    def background():
        page = b"\x5a" * 4096
        try:
            for first in range(0, pages, 16):
                n = min(16, pages - first)
                ents = b"".join(struct.pack("<Q", first + i) for i in range(n))
                m.sendall(pkt(PAGES, struct.pack("<II", 0, n) + ents + page * n))
                time.sleep(0.005)
        except OSError:
            pass

    threading.Thread(target=read_requests, daemon=True).start()
    threading.Thread(target=background, daemon=True).start()
    t0 = time.time()
    while time.time() - t0 < 4:
        with lock:
            if len(reqs) >= 1100:
                break
        time.sleep(0.01)
    with lock:
        held = list(reqs)
    print("requests before replying:", len(held), flush=True)
    sent = 0
    try:
        while True:
            with lock:
                todo = reqs[sent:]
            for pg in todo:
                p.sendall(pkt(PAGES, struct.pack("<IIQ", 0, 1, pg) + b"\x5a" * 4096))
            sent += len(todo)
            time.sleep(0.01)
            if time.time() - t0 > 6:
                break
    except OSError:
        pass
    print("replies sent:", sent, flush=True)


def cpu_ms(pid):
    """utime + stime of a process, ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")


def lateend(port, pages, pid):
    s, m, r, p = switched(port, pages, False)
    page = b"\x5a" * 4096
    for first in range(0, pages, 16):
        n = min(16, pages - first)
        ents = b"".join(struct.pack("<Q", first + i) for i in range(n))
        m.sendall(pkt(PAGES, struct.pack("<II", 0, n) + ents + page * n))
    m.sendall(pkt(END, struct.pack("<QQ", pages, pages)))
    s.sendall(pkt(COMPLETE, struct.pack("<QII", pages, 0, 0)))
    while True:
        t, body = recv_pkt(r)
        if t == END:
            break
    before = cpu_ms(pid)
    time.sleep(1)
    print("listener cpu ms while END was held:", cpu_ms(pid) - before, flush=True)
    p.sendall(pkt(END))
    try:
        t, body = recv_pkt(s)
        print("then the destination sent", t, flush=True)
    except (OSError, EOFError):
        pass


def badreq(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    ls.settimeout(20)
    s, _ = ls.accept()
    vmig_auth.server(s)
    recv_exact(s, 32)
    t, body = recv_pkt(s)
    nmf = struct.unpack("<IIQIIII", body[:32])[4]
    s.sendall(pkt(HELLO_REPLY, struct.pack("<iIQ", 0, 1, CAPS)))
    chans = {}
    while len(chans) < nmf + 2:
        c, _ = ls.accept()
        vmig_auth.server(c)
        h = recv_exact(c, 32 + 32)	# header and binding proof (not checked here)
        kind, idx = struct.unpack("<H", h[6:8])[0], struct.unpack("<I", h[16:20])[0]
        chans[(kind, idx)] = c
        if kind == MULTIFD:
            threading.Thread(target=drain, args=(c,), daemon=True).start()
    while True:
        t, body = recv_pkt(s)
        if t == POSTCOPY:
            break
    s.sendall(pkt(RESUMED))
    rp = chans[(RETURN, 0)]
    rp.sendall(pkt(REQ, struct.pack("<IIQ", 0, 0, 1 << 40)))
    time.sleep(1)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "unrequested":
        unrequested(port, int(sys.argv[3]) if len(sys.argv) > 3 else 4096)
    elif mode == "slowreplies":
        slowreplies(port, int(sys.argv[3]))
    elif mode == "latemarker":
        switched(port, 4096, True, 0.3)
        print("resumed", flush=True)
    elif mode == "lateend":
        lateend(port, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "badreq":
        badreq(port)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
