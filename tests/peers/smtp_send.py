"""Sends one message to the protolab SMTP server with Python's smtplib; exits non-zero on any surprise.

Usage: python3 smtp_send.py HOST PORT
"""

import smtplib
import sys
from email import policy
from email.message import EmailMessage

host, port = sys.argv[1], int(sys.argv[2])

with smtplib.SMTP(host, port, local_hostname="python.lab", timeout=20) as s:
    code, _ = s.ehlo()
    assert code == 250, code
    for ext in ("size", "8bitmime", "pipelining", "help"):
        assert s.has_extn(ext), (ext, s.esmtp_features)
    assert s.noop()[0] == 250
    assert s.verify("bob")[0] == 252

    # smtplib.data() sends bytes as they are: they must already have CRLF line ends.
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "carol@python.lab"
    msg["To"] = "bob@protolab.test"
    msg["Subject"] = "Hi from smtplib"
    msg.set_content("Hello Bob.\n.This line starts with a dot.\n")
    text = msg.as_bytes()

    # The transaction step by step, to see each reply code.
    assert s.mail("carol@python.lab", ["size=%d" % len(text)])[0] == 250
    assert s.rcpt("bob@protolab.test")[0] == 250
    code, reply = s.data(text)
    assert code == 250, (code, reply)
    assert reply.startswith(b"OK queued as "), reply

    # Relaying is refused: the lab server takes mail for @protolab.test only.
    try:
        s.sendmail("carol@python.lab", ["eve@elsewhere.example"], "Subject: x\r\n\r\nx\r\n")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["eve@elsewhere.example"][0] == 550, e.recipients
    else:
        sys.exit("the server relayed mail to another domain")

print("ok")
