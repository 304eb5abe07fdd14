"""Authentication for HTTP connectors: configuration models and the headers they produce.

Kinds (the ``auth:`` key of a connector, chosen by ``type``)
    none                        no credentials (the default)
    basic                       ``Authorization: Basic base64(username:password)``;
                                keys: username, password_env
    api_key                     one header carrying a key; keys: header (default X-API-Key),
                                prefix (e.g. ``"token "`` for ERPNext), value_env
    bearer                      ``Authorization: Bearer <token>``; keys: token_env
    oauth2_client_credentials   RFC 6749 §4.4: the token is fetched from token_url with
                                client_id and the secret, cached until `refresh_margin_seconds`
                                before it expires, and fetched again once when the API answers
                                401; keys: token_url, client_id, client_secret_env, scope,
                                audience, client_auth (basic|body), refresh_margin_seconds

Secrets come only from the environment: every ``*_env`` key is the NAME of an environment
variable, read when the connector is built (an unset variable stops start-up with a
ConfigError). Secret values never appear in ``repr``, error messages or logs.

Token endpoint errors (oauth2_client_credentials)
    HTTP 400/401 ``invalid_client``,       PermanentError: the configuration is wrong; a retry
      ``invalid_grant``, ``unauthorized_   will not fix it
      client``, ``invalid_scope``, other 4xx
    HTTP 408, 429, 5xx, connection         TransientError (retry_after from Retry-After)
      errors, timeouts
    a 2xx without ``access_token``         TransientError (a broken answer, not a refusal)
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal, Protocol

import requests
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, PositiveFloat

from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.retry import parse_retry_after

__all__ = [
    "ApiKeyAuth",
    "AuthConfig",
    "Authenticator",
    "BasicAuth",
    "BearerAuth",
    "NoAuth",
    "OAuth2ClientCredentials",
    "build_auth",
    "env_secret",
]

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class NoAuth(BaseModel):
    """No credentials."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["none"] = "none"


class BasicAuth(BaseModel):
    """HTTP basic authentication."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["basic"] = "basic"
    username: str = Field(description="The user name (not a secret).")
    password_env: str = Field(pattern=ENV_NAME, description="Name of the environment variable holding the password.")


class ApiKeyAuth(BaseModel):
    """A key sent in one request header."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["api_key"] = "api_key"
    header: str = Field("X-API-Key", pattern=r"^[A-Za-z0-9-]{1,64}$", description="The header carrying the key.")
    prefix: str = Field("", max_length=32, description="Text before the key in the header, e.g. 'token ' (ERPNext).")
    value_env: str = Field(pattern=ENV_NAME, description="Name of the environment variable holding the key.")


class BearerAuth(BaseModel):
    """A static bearer token (e.g. a HubSpot private-app token)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["bearer"] = "bearer"
    token_env: str = Field(pattern=ENV_NAME, description="Name of the environment variable holding the token.")


class OAuth2ClientCredentials(BaseModel):
    """OAuth 2 client-credentials grant; the token is cached and refreshed."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: AnyHttpUrl = Field(description="The authorization server's token endpoint.")
    client_id: str = Field(description="The client id (not a secret).")
    client_secret_env: str = Field(pattern=ENV_NAME, description="Name of the environment variable holding the client secret.")
    scope: str | None = Field(None, description="Space-separated scopes to request; unset: the server's default.")
    audience: str | None = Field(None, description="The `audience` parameter some servers require (Auth0, Okta).")
    client_auth: Literal["basic", "body"] = Field(
        "basic", description="How the client authenticates: HTTP basic (RFC 6749 default) or client_id/client_secret in the form."
    )
    refresh_margin_seconds: float = Field(
        60.0, ge=0, description="Fetch a new token this long before the cached one expires."
    )
    timeout: PositiveFloat = Field(10.0, description="Seconds one token request may take.")


AuthConfig = Annotated[
    NoAuth | BasicAuth | ApiKeyAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="type")
]


class Authenticator(Protocol):
    refreshable: bool  # True: a 401 may be cured by invalidate() and one more try

    def headers(self) -> dict[str, str]:
        """The headers to add to a request (may fetch a token: TransientError/PermanentError)."""
        ...

    def invalidate(self) -> None:
        """The API refused the credentials (401): forget any cached token."""
        ...

    def secrets(self) -> list[str]:
        """Secret values to mask in error excerpts."""
        ...


def env_secret(name: str, where: str) -> str:
    """The value of environment variable `name`; ConfigError naming `where` when unset or empty."""
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{where}: environment variable {name} is not set")
    return value


class _Static:
    refreshable = False

    def __init__(self, headers: dict[str, str], secrets: list[str]):
        self._headers = headers
        self._secrets = secrets

    def __repr__(self) -> str:
        return f"<auth headers={sorted(self._headers)}>"

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def invalidate(self) -> None:
        return None

    def secrets(self) -> list[str]:
        return list(self._secrets)


class _OAuth2:
    """Client credentials with a cached token; thread-safe (one fetch at a time)."""

    refreshable = True

    def __init__(
        self,
        config: OAuth2ClientCredentials,
        secret: str,
        session: requests.Session,
        clock: Callable[[], float],
        where: str,
    ):
        self.config = config
        self._secret = secret
        self._session = session
        self._clock = clock
        self._where = where
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetches = 0  # how many tokens were fetched (metrics and tests)

    def __repr__(self) -> str:
        return f"<oauth2 client_credentials client_id={self.config.client_id!r} token_url={str(self.config.token_url)!r}>"

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._clock() >= self._expires - self.config.refresh_margin_seconds:
                self._fetch()
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def secrets(self) -> list[str]:
        return [s for s in (self._secret, self._token) if s]

    def _fetch(self) -> None:
        cfg = self.config
        form = {"grant_type": "client_credentials"}
        if cfg.scope:
            form["scope"] = cfg.scope
        if cfg.audience:
            form["audience"] = cfg.audience
        headers = {"Accept": "application/json"}
        if cfg.client_auth == "basic":
            raw = f"{cfg.client_id}:{self._secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            form.update(client_id=cfg.client_id, client_secret=self._secret)
        where = f"{self._where}: token endpoint {cfg.token_url.host}"
        try:
            response = self._session.post(
                str(cfg.token_url), data=form, headers=headers, timeout=cfg.timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError:
            raise PermanentError(f"{where}: TLS failure (certificate or CA bundle)") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"{where}: {type(exc).__name__}") from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        if status in TRANSIENT_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(f"{where}: HTTP {status}", status=status, retry_after=retry_after)
        if not 200 <= status < 300:
            code = str(body.get("error") or "")[:64]
            text = str(body.get("error_description") or "")[:200]
            raise PermanentError(
                f"{where} refused the client {cfg.client_id!r}: HTTP {status} {code} {text}".rstrip()
                + "; check client_id, the secret and scope",
                status=status,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(f"{where}: the answer holds no access_token")
        expires_in = body.get("expires_in")
        seconds = float(expires_in) if isinstance(expires_in, (int, float, str)) and str(expires_in).isdigit() else 3600.0
        self._token = token
        self._expires = self._clock() + seconds
        self.fetches += 1


def build_auth(
    config: AuthConfig | None,
    *,
    where: str,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Authenticator:
    """The authenticator for `config`; ConfigError when a named environment variable is unset.

    `where` names the connector in messages; `session` is used for token requests.
    """
    if config is None or isinstance(config, NoAuth):
        return _Static({}, [])
    if isinstance(config, BasicAuth):
        password = env_secret(config.password_env, "auth.password_env")
        raw = base64.b64encode(f"{config.username}:{password}".encode()).decode("ascii")
        return _Static({"Authorization": f"Basic {raw}"}, [password, raw])
    if isinstance(config, ApiKeyAuth):
        value = env_secret(config.value_env, "auth.value_env")
        return _Static({config.header: f"{config.prefix}{value}"}, [value])
    if isinstance(config, BearerAuth):
        token = env_secret(config.token_env, "auth.token_env")
        return _Static({"Authorization": f"Bearer {token}"}, [token])
    secret = env_secret(config.client_secret_env, "auth.client_secret_env")
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no ~/.netrc credentials added to the token request
    return _OAuth2(config, secret, session, clock, where)

