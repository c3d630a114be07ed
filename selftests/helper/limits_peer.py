#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A source that exceeds one of the destination's caps, for limits_test.sh.

limits_peer.py PORT MODE [--tls CREDS_DIR] [--pages N]

  channels     HELLO asking for 65 multifd channels (cap 64)
  regions      HELLO describing 17 RAM regions (cap 16)
  hellosize    a HELLO header claiming 2 GiB (cap: the largest packet)
  extrachan    2 channels negotiated: channel 0, then a duplicate of it and a
               channel 2 (plaintext only: channels other than main need
               the TLS exporter under TLS, which Python's ssl lacks)
  silent       connect and send nothing
With --tls the main channel runs over TLS 1.3 with DIR's certificate.
Prints the destination's answer, if any.
"""
import argparse
import socket
import ssl
import struct
import time

import vmig_auth

MAGIC = 0x47494D56
HELLO, HELLO_REPLY, PAGES, END, ROUND, COMPLETE, RESUMED, ERROR, NOP = range(1, 10)
SESSION = 0x0123456789ABCDEF


def chan_hdr(kind, index=0):
    return struct.pack("<IHHQIIQ", MAGIC, 1, kind, SESSION, index, 0, 0)


def pkt(ptype, payload=b"", length=None):
    return struct.pack("<HHI", ptype, 0, len(payload) if length is None else length) + payload


def hello(nr_multifd, region_pages):
    return struct.pack("<IIQIIII", 1, 1, 3, 4096, nr_multifd, len(region_pages), 0) + \
        b"".join(struct.pack("<Q", p) for p in region_pages)


def answer(s):
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    return "".join(ch for ch in data[8:].decode(errors="replace") if ch.isprintable())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode")
    ap.add_argument("--tls")
    ap.add_argument("--pages", type=int, default=4096)
    a = ap.parse_args()

    secrets = {}

    def conn():
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        if not a.tls:
            if a.mode != "silent":
                secrets[s] = vmig_auth.client(s)
            return s
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(a.tls + "/ca.pem")
        ctx.load_cert_chain(a.tls + "/cert.pem", a.tls + "/key.pem")
        return ctx.wrap_socket(s, server_hostname="127.0.0.1")

    s = conn()
    if a.mode == "silent":
        time.sleep(8)
        return
    s.sendall(chan_hdr(1))
    key = vmig_auth.session_key(secrets[s], SESSION) if s in secrets else None
    if a.mode == "channels":
        s.sendall(pkt(HELLO, hello(65, [a.pages])))
    elif a.mode == "regions":
        s.sendall(pkt(HELLO, hello(1, [1] * 17)))
    elif a.mode == "hellosize":
        s.sendall(pkt(HELLO, b"", 1 << 31))
    elif a.mode == "extrachan":
        s.sendall(pkt(HELLO, hello(2, [a.pages])))
        rep = s.recv(4096)
        if struct.unpack("<i", rep[8:12])[0] != 0:
            print("handshake refused:", rep[24:].decode(errors="replace"))
            return
        m0 = conn()
        h = chan_hdr(2, 0)
        m0.sendall(h + vmig_auth.channel_proof(key, h, secrets[m0]))
        time.sleep(0.3)
        for index in (0, 2):
            m = conn()
            h = chan_hdr(2, index)
            m.sendall(h + vmig_auth.channel_proof(key, h, secrets[m]))
            print("extra channel %d:" % index, answer(m))
        m0.close()
    else:
        raise SystemExit("unknown mode " + a.mode)
    print(answer(s))


if __name__ == "__main__":
    main()
