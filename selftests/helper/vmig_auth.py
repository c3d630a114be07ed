# SPDX-License-Identifier: GPL-2.0
"""vmig's plain-TCP authentication and session binding (helper/net/wire.h,
helper/net/auth.h), for the test peers.

The token comes from the file named by $VMIG_TOKEN_FILE (the listener's
--token-file); without it, the empty token of --insecure.
"""
import hashlib
import hmac
import os
import struct

AUTH_MAGIC = 0x41494D56


def token():
    path = os.environ.get("VMIG_TOKEN_FILE")
    if not path:
        return b""
    return open(path, "rb").read().rstrip(b"\r\n")


def _mac(key, label, *parts):
    return hmac.new(key, label + b"".join(parts), hashlib.sha256).digest()


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        d = s.recv(n - len(data))
        if not d:
            raise ConnectionError("peer closed after %d of %d bytes" % (len(data), n))
        data += d
    return data


def client(s, tok=None):
    """Authenticate a connection as a source: its secret."""
    tok = token() if tok is None else tok
    nc = os.urandom(32)
    s.sendall(struct.pack("<IHH", AUTH_MAGIC, 1, 1 if tok else 0) + nc)
    ch = recv_exact(s, 72)
    magic, status = struct.unpack_from("<II", ch)
    nd, mac = ch[8:40], ch[40:72]
    if magic != AUTH_MAGIC or status:
        raise ConnectionError("authentication refused (status %d)" % status)
    if not hmac.compare_digest(mac, _mac(tok, b"vmig-auth-dst-v1", nc, nd)):
        raise ConnectionError("the destination does not know the token")
    s.sendall(_mac(tok, b"vmig-auth-src-v1", nc, nd))
    return _mac(tok, b"vmig-auth-conn-v1", nc, nd)


def server(s, tok=None):
    """Authenticate a connection as a destination: its secret."""
    tok = token() if tok is None else tok
    hello = recv_exact(s, 40)
    magic, version, method = struct.unpack_from("<IHH", hello)
    nc = hello[8:40]
    if magic != AUTH_MAGIC or version != 1 or method != (1 if tok else 0):
        raise ConnectionError("not an authentication hello")
    nd = os.urandom(32)
    s.sendall(struct.pack("<II", AUTH_MAGIC, 0) + nd + _mac(tok, b"vmig-auth-dst-v1", nc, nd))
    if not hmac.compare_digest(recv_exact(s, 32), _mac(tok, b"vmig-auth-src-v1", nc, nd)):
        raise ConnectionError("the source does not know the token")
    return _mac(tok, b"vmig-auth-conn-v1", nc, nd)


def session_key(secret, session):
    """A main channel's session key."""
    return _mac(secret, b"vmig-session-v1", struct.pack("<Q", session))


def channel_proof(key, hdr, secret):
    """What follows the header of a channel other than main."""
    return _mac(key, b"vmig-channel-v1", hdr, secret)


def resume_proof(root, session, secret):
    """RESUME's proof of the session's first key."""
    return _mac(root, b"vmig-resume-v1", struct.pack("<Q", session), secret)
