"""A mail server that speaks TLS 1.2 at most, as some real servers still do: SMTP over TLS from
the first byte (as on port 465), one session, the few replies a client needs. Prints its port,
then serves; exits non-zero if the session was not TLS 1.2 or did not end with QUIT.

Usage: python3 smtps_tls12.py CERTFILE KEYFILE
"""

import socket
import ssl
import sys

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.maximum_version = ssl.TLSVersion.TLSv1_2
context.load_cert_chain(sys.argv[1], sys.argv[2])

listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
raw, _ = listener.accept()
raw.settimeout(20)
conn = context.wrap_socket(raw, server_side=True)
assert conn.version() == "TLSv1.2", conn.version()
lines = conn.makefile("rb")


def say(text):
    conn.sendall(text.encode() + b"\r\n")


say("220 old.example ESMTP")
quit_seen = False
while not quit_seen:
    line = lines.readline()
    if not line:
        break
    verb = line.split(b" ")[0].split(b":")[0].strip().upper()
    if verb == b"EHLO":
        say("250-old.example\r\n250-SIZE 1000000\r\n250 AUTH PLAIN")
    elif verb == b"AUTH":
        say("235 2.7.0 authenticated")
    elif verb in (b"MAIL", b"RCPT"):
        say("250 OK")
    elif verb == b"DATA":
        say("354 go ahead")
        while lines.readline() not in (b".\r\n", b""):
            pass
        say("250 queued")
    elif verb == b"QUIT":
        say("221 bye")
        quit_seen = True
    else:
        say("502 not here")
conn.close()
sys.exit(0 if quit_seen else 1)
