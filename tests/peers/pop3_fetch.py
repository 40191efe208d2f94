"""Fetches and deletes bob's newest message from the protolab POP3 server with Python's poplib;
prints its Message-ID; exits non-zero on any surprise.

Usage: python3 pop3_fetch.py HOST PORT
"""

import poplib
import sys
from email import message_from_bytes

host, port = sys.argv[1], int(sys.argv[2])

p = poplib.POP3(host, port, timeout=20)
assert p.getwelcome().startswith(b"+OK"), p.getwelcome()
caps = p.capa()
for cap in ("USER", "TOP", "UIDL"):
    assert cap in caps, caps

# A wrong password is refused, and the server wants USER again.
p.user("bob")
try:
    p.pass_("wrong")
    raise SystemExit("a wrong password was taken")
except poplib.error_proto as e:
    assert b"[AUTH]" in e.args[0], e

p.user("bob")
p.pass_("lab")
count, size = p.stat()
assert count >= 1, count
resp, listing, _ = p.list()
assert len(listing) == count, listing
resp, uids, _ = p.uidl()
assert len(uids) == count, uids
resp, head, _ = p.top(count, 0)
assert any(line.lower().startswith(b"subject:") for line in head), head
resp, lines, octets = p.retr(count)
msg = message_from_bytes(b"\r\n".join(lines) + b"\r\n")
# poplib undoes the dot-stuffing: the line that starts with a dot has one again.
assert any(line.startswith(b".") and not line.startswith(b"..") for line in lines), lines
p.dele(count)
try:
    p.retr(count)
    raise SystemExit("a deleted message was retrieved")
except poplib.error_proto:
    pass
p.quit()
print(msg["Message-ID"])
