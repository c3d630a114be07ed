#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# A TCP forwarder for the recovery benchmark: listen on PORT, forward every
# connection to TARGET_PORT on loopback.  Killing it drops every connection
# at once, like a broken link; starting it again on the same port is the
# link coming back.   tcp_proxy.py PORT TARGET_PORT
import socket
import sys
import threading
import time


def pump(a, b):
    try:
        while True:
            d = a.recv(1 << 16)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    port, target = int(sys.argv[1]), int(sys.argv[2])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("proxy: ready %.6f" % time.time(), flush=True)
    while True:
        c, _ = ls.accept()
        try:
            u = socket.create_connection(("127.0.0.1", target))
        except OSError:
            c.close()
            continue
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        threading.Thread(target=pump, args=(u, c), daemon=True).start()


main()
