"""AS2 (RFC 4130) with pyas2lib: partners' signed, encrypted, compressed messages received at
POST /intake/as2, committed, then answered with a signed MDN carrying the MIC.

`gateway.as2.config` is light and imported by the intake's configuration; pyas2lib and its
crypto backend load only when AS2 is configured.

    receiver.py   one request -> parse, commit (or quarantine), MDN
    mdn.py        asynchronous MDNs, posted in the background with retries
    http.py       the FastAPI route
    certs.py      certificate facts for `gateway as2 check`
"""

from __future__ import annotations

from gateway.as2.config import As2Config, As2PartnerConfig

__all__ = ["As2Config", "As2PartnerConfig"]
