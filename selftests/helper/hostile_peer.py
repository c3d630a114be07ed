#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Attacks on a vmig listener from issue 16, for security_test.sh.

hostile_peer.py PORT MODE [ARGS]

  takeover PAGES_GUESS   the first-HELLO takeover as it worked against a
                         plaintext listener: a HELLO with a wrong size, the
                         refusal's RAM size, a right HELLO, one page, END,
                         COMPLETE.  Without the token (plain, then the empty
                         token of --insecure).  Exit 0 only if the listener
                         took it.
  hijack SESSION [TLSDIR] RESUME of a paused postcopy with its session id, from
                         a peer holding the token (or, with TLSDIR, a certificate
                         of the same CA) but not the session's key.  Exit 0
                         only if it got the received bitmap.
  notswitched SECONDS [forged]
                         a fake destination on PORT, holding the token but not
                         the session's key: to every RESUME, for SECONDS, it
                         answers ERROR NOT_SWITCHED ("the guest never ran
                         here"), with "forged" after a NOT_SWITCHED packet
                         carrying a random proof.  A source that believed it
                         would resume its own guest while the real destination
                         runs it.  Prints how many RESUMEs it answered.
  drip N SECONDS [GAP]   N connections sending one byte every GAP seconds
                         (default 1), for SECONDS.
  flood KIND PAGES       an authenticated source whose device state is hostile:
                         KIND empty (empty non-final chunks), window (a chunk
                         far ahead), dup (a chunk twice), tiny (1-byte chunks,
                         never the first one).  Prints what the listener said.
The token, where one is used, comes from $VMIG_TOKEN_FILE (vmig_auth.py).
"""
import os
import re
import socket
import ssl
import struct
import sys
import time

import vmig_auth

MAGIC = 0x47494D56
(HELLO, HELLO_REPLY, PAGES, END, ROUND, COMPLETE, RESUMED, ERROR, NOP, DEVICES, DEVSTATE,
 DISCARD, POSTCOPY, REQ, DONE, RESUME, RECEIVED, NOT_SWITCHED) = range(1, 19)
ERR_NOT_SWITCHED = 0x10000
MAIN, MULTIFD = 1, 2


def chan_hdr(kind, session, index=0):
    return struct.pack("<IHHQIIQ", MAGIC, 1, kind, session, index, 0, 0)


def pkt(ptype, payload=b""):
    return struct.pack("<HHI", ptype, 0, len(payload)) + payload


def hello(pages, caps=3, nr_multifd=1):
    return pkt(HELLO, struct.pack("<IIQIIII", 1, 1, caps, 4096, nr_multifd, 1, 0) +
               struct.pack("<Q", pages))


def recv_pkt(s):
    t, _, n = struct.unpack("<HHI", vmig_auth.recv_exact(s, 8))
    return t, vmig_auth.recv_exact(s, n) if n else b""


def said(body):
    return "".join(c for c in body.decode(errors="replace") if c.isprintable())


def conn(port, auth):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    secret = None
    if auth == "token":
        secret = vmig_auth.client(s)
    elif auth == "empty":
        secret = vmig_auth.client(s, b"")
    return s, secret


def takeover(port, guess):
    session = 0x5EC0DE5EC0DE0001
    for auth in ("plain", "empty"):
        try:
            s, secret = conn(port, auth)
            s.sendall(chan_hdr(MAIN, session) + hello(guess))
            t, body = recv_pkt(s)
        except (OSError, ConnectionError) as e:
            print("%s: refused before any answer: %s" % (auth, e))
            continue
        if t == ERROR:
            print("%s: refused: %s" % (auth, said(body[8:])))
            continue
        msg = said(body[16:])
        m = re.search(r"destination (\d+) MiB", msg)
        if not m:
            print("%s: no size disclosed: %s" % (auth, msg))
            continue
        pages = int(m.group(1)) * 256
        s, secret = conn(port, auth)
        s.sendall(chan_hdr(MAIN, session) + hello(pages))
        t, body = recv_pkt(s)
        if t != HELLO_REPLY or struct.unpack("<i", body[:4])[0]:
            print("%s: second HELLO refused" % auth)
            continue
        m, _ = conn(port, auth)
        m.sendall(chan_hdr(MULTIFD, session, 0))
        m.sendall(pkt(PAGES, struct.pack("<IIQ", 0, 1, 0) + b"\x66" * 4096) +
                  pkt(END, struct.pack("<QQ", 1, 1)))
        s.sendall(pkt(COMPLETE, struct.pack("<QII", 1, 0, 0)))
        t, body = recv_pkt(s)
        print("%s: TAKEOVER: the listener answered %d" % (auth, t))
        sys.exit(0)
    sys.exit(1)


def hijack(port, session, tls_dir=None):
    if tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(tls_dir + "/ca.pem")
        ctx.load_cert_chain(tls_dir + "/cert.pem", tls_dir + "/key.pem")
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="127.0.0.1")
    else:
        s, secret = conn(port, "token")
    s.sendall(chan_hdr(MAIN, session))
    s.sendall(pkt(RESUME, struct.pack("<II", 1, 0) + os.urandom(32)))
    try:
        t, body = recv_pkt(s)
    except (OSError, ConnectionError) as e:
        print("hijack: no answer: %s" % e)
        sys.exit(1)
    if t == ERROR:
        print("hijack: refused: %s" % said(body[8:]))
        sys.exit(1)
    print("hijack: HIJACKED: the listener sent packet type %d" % t)
    sys.exit(0)


def notswitched(port, secs, forged):
    ls = socket.create_server(("127.0.0.1", port))
    ls.settimeout(1)
    t0, answered = time.time(), 0
    while time.time() - t0 < secs:
        try:
            s, _ = ls.accept()
        except socket.timeout:
            continue
        try:
            s.settimeout(10)
            vmig_auth.server(s)
            vmig_auth.recv_exact(s, 32)             # the channel header
            t, _ = recv_pkt(s)
            if t != RESUME:
                continue
            msg = b"the postcopy switch did not reach the destination: its guest never ran"
            s.sendall((pkt(NOT_SWITCHED, os.urandom(32)) if forged else b"") +
                      pkt(ERROR, struct.pack("<iI", ERR_NOT_SWITCHED, 0) + msg))
            answered += 1
        except (OSError, ConnectionError):
            pass
        finally:
            s.close()
    print("notswitched: answered %d RESUMEs with NOT_SWITCHED%s" %
          (answered, " and a forged proof" if forged else ""))


def drip(port, n, secs, gap):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    t0 = time.time()
    closed = 0
    while time.time() - t0 < secs and socks:
        for s in list(socks):
            try:
                s.sendall(b"V")
            except OSError:
                socks.remove(s)
                closed += 1
        time.sleep(gap)
    print("drip: %d of %d connections closed by the listener within %d s" % (closed, n, secs))


def flood(port, kind, pages):
    session = 0x5EC0DE5EC0DE0002
    s, secret = conn(port, "token")
    key = vmig_auth.session_key(secret, session)
    s.sendall(chan_hdr(MAIN, session) + hello(pages, caps=1 | 2 | 32))
    t, body = recv_pkt(s)
    if t != HELLO_REPLY or struct.unpack("<i", body[:4])[0]:
        sys.exit("flood: handshake refused: " + said(body[16:]))
    dev = b"nic0".ljust(32, b"\0") + struct.pack("<IIQ", 0, 0, 1 << 20)
    s.sendall(pkt(DEVICES, struct.pack("<IIII", 1, 4096, 1, 0) + dev))
    m, msecret = conn(port, "token")
    h = chan_hdr(MULTIFD, session, 0)
    m.sendall(h + vmig_auth.channel_proof(key, h, msecret))
    time.sleep(0.3)

    def chunk(seq, data, flags=0):
        return pkt(DEVSTATE, struct.pack("<IIII", 0, seq, flags, len(data)) + data)

    sent = 0
    try:
        if kind == "empty":
            for seq in range(100000):
                s.sendall(chunk(seq, b""))
                sent += 1
        elif kind == "window":
            s.sendall(chunk(1 << 20, b"x"))
            sent += 1
        elif kind == "dup":
            s.sendall(chunk(1, b"x") + chunk(1, b"x"))
            sent += 2
        elif kind == "tiny":
            for seq in range(1, 4096):
                s.sendall(chunk(seq, b"x"))
                sent += 1
        s.settimeout(30)
        while True:
            t, body = recv_pkt(s)
            if t == ERROR:
                print("flood %s: the listener said: %s" % (kind, said(body[8:])))
                break
    except (OSError, ConnectionError) as e:
        print("flood %s: connection ended: %s" % (kind, e))
    print("flood %s: %d chunks written" % (kind, sent))


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "takeover":
        takeover(port, int(sys.argv[3]))
    elif mode == "hijack":
        hijack(port, int(sys.argv[3], 16), sys.argv[4] if len(sys.argv) > 4 else None)
    elif mode == "notswitched":
        notswitched(port, int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "forged")
    elif mode == "drip":
        drip(port, int(sys.argv[3]), int(sys.argv[4]),
             float(sys.argv[5]) if len(sys.argv) > 5 else 1.0)
    elif mode == "flood":
        flood(port, sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
