#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A misbehaving migration source for the failure tests.

wire_peer.py PORT MODE [REGION_PAGES]

Pre-session modes (the listener must drop the connection and keep waiting):
  badmagic     a channel header with the wrong magic
  badversion   a channel header claiming wire version 0
  nohello      a main channel whose first packet is not HELLO
Session modes (a valid handshake and multifd channel, then the fault; the
listener must end the session and discard the guest):
  oversized    a PAGES header claiming 2 GiB
  truncated    half a PAGES packet, then the connection closes
  outoforder   a HELLO on the multifd channel
  badcount     PAGES with 0 pages
  badpage      PAGES naming a page past the end of guest RAM
  hangup       every connection closes right after the handshake
Prints what the listener answered, if anything.
"""
import socket
import struct
import sys
import time

import vmig_auth

MAGIC = 0x47494D56
HELLO, HELLO_REPLY, PAGES, END, ROUND, COMPLETE, RESUMED, ERROR, NOP = range(1, 10)


def chan_hdr(kind, session, index=0, version=1, magic=MAGIC):
    return struct.pack("<IHHQIIQ", magic, version, kind, session, index, 0, 0)


def pkt(ptype, payload=b"", length=None):
    return struct.pack("<HHI", ptype, 0, len(payload) if length is None else length) + payload


def conn(port):
    """An authenticated connection (vmig_auth.py) and its secret."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s, vmig_auth.client(s)


def drain(s):
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    return data


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    pages = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    session = 0x1234567890ABCDEF
    s, secret = conn(port)
    if mode == "badmagic":
        s.sendall(chan_hdr(1, session, magic=0xDEADBEEF))
        print(drain(s)[8:].decode(errors="replace"))
        return
    if mode == "badversion":
        s.sendall(chan_hdr(1, session, version=0))
        print(drain(s)[8:].decode(errors="replace"))
        return
    s.sendall(chan_hdr(1, session))
    key = vmig_auth.session_key(secret, session)
    if mode == "nohello":
        s.sendall(pkt(COMPLETE, struct.pack("<QII", 0, 0, 0)))
        print(drain(s)[8:].decode(errors="replace"))
        return
    hello = struct.pack("<IIQIIII", 1, 1, 3, 4096, 1, 1, 0) + struct.pack("<Q", pages)
    s.sendall(pkt(HELLO, hello))
    rep = s.recv(4096)
    ptype, _, length = struct.unpack("<HHI", rep[:8])
    status = struct.unpack("<i", rep[8:12])[0]
    if ptype != HELLO_REPLY or status != 0:
        print("handshake refused:", rep[24:].decode(errors="replace"))
        sys.exit(1)
    m, msecret = conn(port)
    h = chan_hdr(2, session, 0)
    m.sendall(h + vmig_auth.channel_proof(key, h, msecret))
    time.sleep(0.2)
    if mode == "oversized":
        m.sendall(struct.pack("<HHI", PAGES, 0, 1 << 31))
    elif mode == "truncated":
        body = struct.pack("<IIQ", 0, 1, 5) + b"\x01" * 4096
        m.sendall(pkt(PAGES, body)[: 8 + 16 + 1000])
        m.close()
    elif mode == "outoforder":
        m.sendall(pkt(HELLO, hello))
    elif mode == "badcount":
        m.sendall(pkt(PAGES, struct.pack("<II", 0, 0)))
    elif mode == "badpage":
        m.sendall(pkt(PAGES, struct.pack("<IIQ", 0, 1, pages) + b"\x01" * 4096))
    elif mode == "hangup":
        m.close()
        s.close()
        return
    else:
        sys.exit("unknown mode " + mode)
    print(drain(s)[16:].decode(errors="replace"))


if __name__ == "__main__":
    main()
