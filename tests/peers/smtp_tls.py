"""Submits one message to protolab's SMTP server with Python's smtplib over STARTTLS (or TLS from
the first byte) and AUTH, trusting the lab CA; exits non-zero on any surprise.

Usage: python3 smtp_tls.py HOST PORT CAFILE starttls|tls
"""

import smtplib
import ssl
import sys

host, port, cafile, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)

if mode == "tls":
    s = smtplib.SMTP_SSL(host, port, local_hostname="python.lab", timeout=20, context=context)
    s.ehlo()
else:
    s = smtplib.SMTP(host, port, local_hostname="python.lab", timeout=20)
    s.ehlo()
    assert s.has_extn("starttls"), s.esmtp_features
    assert not s.has_extn("auth"), "AUTH offered in the clear"
    code, text = s.docmd("AUTH", "PLAIN AGFsaWNlAGxhYg==")
    assert code == 530, (code, text)
    code, text = s.mail("alice@client.lab")
    assert code == 530, (code, text)
    s.starttls(context=context)
    s.ehlo()
    assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"

assert "PLAIN" in s.esmtp_features.get("auth", "").upper(), s.esmtp_features
try:
    s.login("alice", "wrong")
    raise SystemExit("a wrong password logged in")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login("alice", "lab")
s.sendmail(
    "alice@client.lab",
    ["bob@protolab.test"],
    b"From: alice@client.lab\r\nTo: bob@protolab.test\r\nSubject: over TLS\r\n\r\nsealed\r\n",
)
s.quit()
print("ok", s.sock is None)
