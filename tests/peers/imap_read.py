"""Reads bob's mailbox on the protolab IMAP server with Python's imaplib; prints the newest
message's Message-ID; exits non-zero on any surprise.

Usage: python3 imap_read.py HOST PORT
"""

import imaplib
import sys
from email import message_from_bytes

host, port = sys.argv[1], int(sys.argv[2])

m = imaplib.IMAP4(host, port, timeout=20)
assert "IMAP4REV1" in m.capabilities, m.capabilities
assert "IDLE" in m.capabilities, m.capabilities

# A wrong password is refused with NO, and the connection goes on.
try:
    m.login("bob", "wrong")
    raise SystemExit("a wrong password was taken")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e

typ, _ = m.login("bob", "lab")
assert typ == "OK", typ
typ, folders = m.list()
assert typ == "OK" and any(b'"INBOX"' in f for f in folders), folders
typ, data = m.select("INBOX")
count = int(data[0])
assert count >= 1, data
typ, data = m.search(None, "UNSEEN")
assert typ == "OK", data
unseen = data[0].split()

# The header only: BODY.PEEK leaves the message unseen.
typ, data = m.fetch(str(count), "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
assert typ == "OK" and b"Message-ID" in data[0][1], data
typ, data = m.search(None, "UNSEEN")
assert data[0].split() == unseen, (data, unseen)

# The whole message (RFC822 sets \Seen), then a partial fetch of its text.
typ, data = m.fetch(str(count), "(RFC822)")
msg = message_from_bytes(data[0][1])
typ, data = m.fetch(str(count), "(FLAGS)")
assert b"\\Seen" in data[0], data
typ, data = m.fetch(str(count), "(BODY.PEEK[TEXT]<0.10>)")
assert typ == "OK" and len(data[0][1]) == 10, data

# Flags, a folder, a copy, then \Deleted and EXPUNGE of the copy in its folder.
typ, data = m.store(str(count), "+FLAGS", "(\\Flagged)")
assert typ == "OK" and b"\\Flagged" in data[0], data
typ, data = m.create("Python")
assert typ == "OK", data
typ, data = m.copy(str(count), "Python")
assert typ == "OK", data
typ, data = m.status("Python", "(MESSAGES UNSEEN)")
assert typ == "OK" and b"MESSAGES 1" in data[0], data
typ, data = m.select("Python")
assert typ == "OK" and int(data[0]) == 1, data
m.store("1", "+FLAGS", "(\\Deleted)")
typ, data = m.expunge()
assert typ == "OK" and data == [b"1"], data
m.close()
m.logout()
print(msg["Message-ID"])
