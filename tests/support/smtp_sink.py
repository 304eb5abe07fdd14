"""An SMTP server in the test process (aiosmtpd) that keeps every message it is given.

    smtp_sink = smtp_sink_fixture()                            # in a test module
    smtp_tls = smtp_sink_fixture(starttls=True, auth=True)     # STARTTLS + AUTH required

    def test_x(smtp_sink: SmtpSink) -> None:
        send(msg, SmtpConfig(**smtp_sink.config()))            # host, port, tls, ca_file, ...
        (got,) = smtp_sink.wait_for(1)
        got.mail_from, got.rcpt_tos, got.message, got.raw, got.tls, got.login
        smtp_sink.fail("RCPT", "451 4.3.0 Try again later")    # every RCPT gets this answer
        smtp_sink.fail("RCPT", None)                           # back to normal

- Listens on 127.0.0.1 on a free port (aiosmtpd 1.4 cannot take port 0: its readiness
  check connects to the port it was given, so the kernel picks one first).
- ``starttls=True`` offers STARTTLS with a certificate for 127.0.0.1 and localhost signed
  by a throw-away CA (made with `cryptography`); ``ca_file`` is that CA.
  ``implicit_tls=True`` speaks TLS from the first byte instead (port 465 style).
- ``auth=True`` offers AUTH PLAIN/LOGIN (only after STARTTLS) for `username`/`password`
  and refuses mail from a session that has not logged in.
- `fail(stage, reply)` answers MAIL, RCPT or DATA with `reply` (``"451 ..."``, ``"550 ..."``)
  until it is reset; `attempts` counts the commands each stage saw.
- The handler runs in the controller's own thread and event loop: `wait_for` waits on a
  condition instead of sleeping. Messages are parsed with `email.policy.default`.

Warnings: aiosmtpd 1.4.6 raises no Python warnings in these modes (checked with
``-W error -X dev``); its deprecation paths (``Controller(server_kwargs=...)``, the old
``auth_callback``, ``process_message`` and ``*_hook`` methods) are not used, so the
project's ``filterwarnings = error`` stays as it is. What it does say goes to the
``mail.log`` logger, which pytest captures: "Session.login_data is deprecated" on every
successful AUTH (aiosmtpd sets that attribute itself), and tracebacks of TLS handshakes
a test makes fail on purpose.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
USERNAME = "gateway-smtp"
PASSWORD = "smtp-test-secret"

__all__ = ["Received", "SmtpSink", "running_smtp_sink", "smtp_sink_fixture"]

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    mail_from: str  # the envelope sender as aiosmtpd keeps it: "<>" for MAIL FROM:<>
    rcpt_tos: list[str]
    message: EmailMessage  # parsed with email.policy.default
    raw: bytes  # exactly as it came over the wire (after dot-unstuffing)
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the user name of a successful AUTH


@dataclass
class SmtpSink:
    host: str
    port: int
    ca_file: Path | None  # the CA that signed the server certificate (TLS modes)
    tls: Literal["none", "starttls", "ssl"]
    username: str | None
    password: str | None
    messages: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: {"MAIL": 0, "RCPT": 0, "DATA": 0})
    _failures: dict[str, str] = field(default_factory=dict)
    _cv: threading.Condition = field(default_factory=threading.Condition)

    def config(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for a gateway.smtp.SmtpConfig that reaches this sink."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "tls": self.tls,
            "ca_file": self.ca_file,
            "from_address": "Orders <orders@gateway.test>",
            "timeout": 5,
            "helo_name": "gateway.test",
        }
        if self.username is not None:
            values["username"] = self.username
            values["password"] = self.password
        values.update(overrides)
        return values

    def fail(self, stage: Stage, reply: str | None) -> None:
        """Answer every `stage` command with `reply` (e.g. ``"550 5.1.1 No such user"``); None resets."""
        with self._cv:
            if reply is None:
                self._failures.pop(stage, None)
            else:
                if not (len(reply) >= 3 and reply[:3].isdigit() and reply[0] in "45"):
                    raise ValueError(f"a failure reply starts with a 4xx or 5xx code: {reply!r}")
                self._failures[stage] = reply

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """The accepted messages, once there are at least `n` of them."""
        with self._cv:
            ok = self._cv.wait_for(lambda: len(self.messages) >= n, timeout)
            got = list(self.messages)
        assert ok, f"expected {n} messages at the SMTP sink, got {len(got)}"
        return got

    # -- called from the server thread --------------------------------------------------

    def _attempt(self, stage: Stage) -> str | None:
        with self._cv:
            self.attempts[stage] += 1
            return self._failures.get(stage)

    def _keep(self, received: Received) -> None:
        with self._cv:
            self.messages.append(received)
            self._cv.notify_all()


class _Handler:
    """aiosmtpd handler hooks: fault injection per stage, then keep the message."""

    def __init__(self, sink: SmtpSink, auth_required: bool):
        self.sink = sink
        self.auth_required = auth_required

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self.sink._attempt("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.sink._attempt("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink._attempt("DATA")
        if reply is not None:
            return reply
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = session.auth_data if session.authenticated else None
        self.sink._keep(
            Received(
                mail_from=envelope.mail_from if envelope.mail_from is not None else "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=msg,
                raw=raw,
                tls=session.ssl is not None or _on_tls(server),
                login=login.decode() if isinstance(login, bytes) else login,
            )
        )
        return "250 OK"


def _on_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def _authenticator(username: str, password: str) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    return check


def make_certificates(
    folder: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = (HOST,)
) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert.pem, server key.pem) in `folder`: a throw-away CA and a server cert it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or ips or ("sink",))[0])])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_smtp_sink(
    *,
    starttls: bool = False,
    implicit_tls: bool = False,
    auth: bool = False,
    cert_names: tuple[str, ...] = ("localhost", HOST),
) -> Iterator[SmtpSink]:
    """A running sink for the duration of the block; see the module docstring.

    `cert_names` are the DNS names and IP addresses the server certificate is issued for
    (leave out 127.0.0.1 to test a host-name mismatch).
    """
    if starttls and implicit_tls:
        raise ValueError("choose starttls or implicit_tls, not both")
    if auth and not (starttls or implicit_tls):
        raise ValueError(
            "auth needs starttls or implicit_tls: the sink never takes a password in clear text"
        )
    workdir = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
    controller: Controller | None = None
    try:
        ca_file: Path | None = None
        server_context: ssl.SSLContext | None = None
        if starttls or implicit_tls:
            ips = tuple(n for n in cert_names if _is_ip(n))
            ca_file, cert, key = make_certificates(
                workdir, tuple(n for n in cert_names if n not in ips), ips
            )
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(cert, key)
        sink = SmtpSink(
            host=HOST,
            port=_free_port(),
            ca_file=ca_file,
            tls="starttls" if starttls else "ssl" if implicit_tls else "none",
            username=USERNAME if auth else None,
            password=PASSWORD if auth else None,
        )
        kwargs: dict[str, Any] = {"server_hostname": "sink.test", "ready_timeout": 5, "timeout": 30}
        if starttls:
            kwargs.update(tls_context=server_context, require_starttls=auth)
        if implicit_tls:
            kwargs["ssl_context"] = server_context
        if auth:
            # aiosmtpd's auth_require_tls only knows STARTTLS; an implicit-TLS session is
            # encrypted from the start, so the check is switched off there.
            kwargs.update(
                authenticator=_authenticator(USERNAME, PASSWORD), auth_require_tls=not implicit_tls
            )
        controller = Controller(
            _Handler(sink, auth_required=auth), hostname=HOST, port=sink.port, **kwargs
        )
        controller.start()
        yield sink
    finally:
        if controller is not None:
            controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def smtp_sink_fixture(
    *,
    starttls: bool = False,
    implicit_tls: bool = False,
    auth: bool = False,
    scope: Literal["function", "module"] = "function",
) -> Any:
    """A pytest fixture yielding a running SmtpSink: ``smtp_sink = smtp_sink_fixture()``."""

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[SmtpSink]:
        with running_smtp_sink(starttls=starttls, implicit_tls=implicit_tls, auth=auth) as sink:
            yield sink

    return _fixture
