"""Load pyas2lib's crypto backend (oscrypto) on OpenSSL 3.0.10 and later.

oscrypto 1.3.0, the last release, finds the OpenSSL version with ``\\d\\.\\d\\.\\d[a-z]*``
and refuses to load when the patch number has two digits ("OpenSSL 3.0.22"): every
pyas2lib call then fails with "Error detecting the version of libcrypto". Upstream fixed
the pattern (``\\d+``) after that release. Until a release ships it, `load` imports the two
version-detecting modules from their own source with that one pattern corrected, before
anything else imports them. Where the source is already fixed, nothing is changed.
"""

from __future__ import annotations

import importlib.util
import sys
import threading

__all__ = ["load"]

_BROKEN = "'\\\\b(\\\\d\\\\.\\\\d\\\\.\\\\d[a-z]*)\\\\b'"
_FIXED = "'\\\\b(\\\\d+\\\\.\\\\d+\\\\.\\\\d+[a-z]*)\\\\b'"
_MODULES = ("oscrypto._openssl._libcrypto_cffi", "oscrypto._openssl._libcrypto_ctypes")
_lock = threading.Lock()
_done = False


def load() -> None:
    """Make ``import pyas2lib`` work on this machine's OpenSSL (idempotent, thread-safe)."""
    global _done
    with _lock:
        if _done:
            return
        import oscrypto

        if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
            name = _MODULES[0] if oscrypto.ffi() == "cffi" else _MODULES[1]
            if name not in sys.modules:
                _import_fixed(name)
        _done = True


def _import_fixed(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None:
        return
    source = spec.loader.get_source(name)  # type: ignore[attr-defined]
    if not isinstance(source, str) or _BROKEN not in source:
        return  # a fixed oscrypto: import it as it is
    module = importlib.util.module_from_spec(spec)
    code = compile(source.replace(_BROKEN, _FIXED), spec.origin, "exec")
    sys.modules[name] = module
    try:
        # oscrypto's own code, from its installed file, with one regular expression changed
        exec(code, module.__dict__)  # noqa: S102
    except BaseException:
        del sys.modules[name]
        raise
