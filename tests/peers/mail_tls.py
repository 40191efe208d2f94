"""Reads bob's mail from protolab's POP3 or IMAP server with Python's poplib or imaplib over TLS
(STLS / STARTTLS, or TLS from the first byte), trusting the lab CA; exits non-zero on any surprise.

Usage: python3 mail_tls.py pop3|imap starttls|tls HOST PORT CAFILE
"""

import imaplib
import poplib
import ssl
import sys

proto, mode, host, port, cafile = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
context = ssl.create_default_context(cafile=cafile)

if proto == "pop3":
    if mode == "tls":
        p = poplib.POP3_SSL(host, port, timeout=20, context=context)
    else:
        p = poplib.POP3(host, port, timeout=20)
        assert "STLS" in p.capa(), p.capa()
        try:
            p.user("bob")
            raise SystemExit("USER taken in the clear")
        except poplib.error_proto as e:
            assert b"STLS first" in e.args[0], e
        p.stls(context=context)
        assert "STLS" not in p.capa(), "STLS offered again inside TLS"
    p.user("bob")
    p.pass_("lab")
    count, _ = p.stat()
    assert count >= 1, count
    lines = p.retr(count)[1]
    assert any(l.startswith(b"Subject:") for l in lines), lines
    p.quit()
else:
    if mode == "tls":
        m = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=20)
    else:
        m = imaplib.IMAP4(host, port, timeout=20)
        assert "LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities, m.capabilities
        m.starttls(ssl_context=context)
        assert "LOGINDISABLED" not in m.capabilities and "STARTTLS" not in m.capabilities, m.capabilities
    typ, _ = m.login("bob", "lab")
    assert typ == "OK", typ
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1, data
    typ, data = m.fetch(data[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject:" in data[0][1], data
    m.logout()
print("ok")
