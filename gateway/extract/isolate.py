"""Risky readers (PDF, XLSX) run in a child process with memory and CPU limits.

A PDF or a spreadsheet is a small program for a large library (pdfminer/pdfium, openpyxl);
a crafted one can make it allocate gigabytes, loop, or crash the interpreter. The gateway
must survive that and quarantine the attachment (reliability.md P4, C2), so these readers
run in ``python -m gateway.extract.isolate`` with:

    RLIMIT_AS   memory_mb of address space (MemoryError inside, or a kill)
    RLIMIT_CPU  cpu_seconds of CPU time (SIGXCPU, then SIGKILL)
    a wall-clock timeout (the child is killed; a stuck read never holds a worker)

Protocol: the parent writes one JSON line ``{"job": ..., "args": {...}}`` and then the
attachment's bytes to the child's stdin; the child answers one JSON object on stdout,
``{"ok": result}`` or ``{"error": {"reason", "message", "position"}}``. Nothing from the
message reaches the command line or the environment.

Jobs
    pdf_text     -> {"pages": [...], "reader_messages": [...], "unread_pages": [...]}
    xlsx_table   -> [{"order": {...}, "provenance": {...}, "confidence": {...}, "warnings": [...]}]

Failures of the child itself become ExtractionError EXTRACT_LIMIT (killed for time or
memory) or EXTRACT_READER_FAILED (it crashed), with a sentence a person understands.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

from gateway.errors import InputRejected
from gateway.extract.base import Extraction, ExtractionError

__all__ = ["LIMITS", "isolated_pdf_text", "isolated_xlsx_table"]

# Generous for real documents (a 50-page PDF reads in ~100 MB, a 10,000-row XLSX in ~200 MB),
# small enough that a bomb cannot hurt the node.
LIMITS = {"memory_mb": 1024, "cpu_seconds": 60, "timeout_seconds": 90}


def isolated_pdf_text(data: bytes, label: str) -> list[str]:
    """`gateway.extract.text.pdf_text` in a limited child process (same result type)."""
    from gateway.extract.text import PdfPages

    out = _run("pdf_text", {"label": label}, data, label)
    ocr_lines = {int(page): {int(n): float(c) for n, c in lines} for page, lines in out.get("ocr_lines", [])}
    return PdfPages(out["pages"], reader_messages=out["reader_messages"], unread_pages=out["unread_pages"], ocr_lines=ocr_lines)


def isolated_xlsx_table(data: bytes, label: str, template: Any) -> list[Extraction]:
    """`gateway.extract.table.extract_table(data, "xlsx", ...)` in a limited child process."""
    from gateway.model import Order

    out = _run("xlsx_table", {"label": label, "template": template.model_dump(mode="json")}, data, label)
    return [Extraction(Order.model_validate(e["order"]), e["provenance"], e["confidence"], e["warnings"]) for e in out]


def _run(job: str, args: dict[str, Any], data: bytes, label: str) -> Any:
    request = json.dumps({"job": job, "args": args, "limits": LIMITS}).encode() + b"\n" + data
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gateway.extract.isolate"],
            input=request,
            capture_output=True,
            timeout=LIMITS["timeout_seconds"],
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired as exc:
        raise ExtractionError(
            f"reading {label} took longer than {LIMITS['timeout_seconds']} s and was stopped; "
            "the file is built to exhaust the reader, or far larger than an order needs",
            reason="EXTRACT_LIMIT",
        ) from exc
    try:
        answer = json.loads(proc.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if isinstance(answer, dict) and "ok" in answer:
        return answer["ok"]
    if isinstance(answer, dict) and "error" in answer:
        e = answer["error"]
        raise ExtractionError(e["message"], reason=e["reason"], position=e.get("position"))
    if proc.returncode < 0 or b"MemoryError" in proc.stderr:
        raise ExtractionError(
            f"reading {label} used more than {LIMITS['memory_mb']} MB of memory or "
            f"{LIMITS['cpu_seconds']} s of CPU and was stopped; the file is built to exhaust the reader",
            reason="EXTRACT_LIMIT",
        )
    tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
    raise ExtractionError(f"the reader for {label} failed ({tail[0][:200]})", reason="EXTRACT_READER_FAILED")


# -- the child -------------------------------------------------------------------------------


def _child() -> int:
    head = sys.stdin.buffer.readline()
    request = json.loads(head)
    limits = request["limits"]
    memory = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))
    data = sys.stdin.buffer.read()
    args = request["args"]
    try:
        result = _JOBS[request["job"]](data, args)
        out: dict[str, Any] = {"ok": result}
    except InputRejected as exc:
        out = {"error": {"reason": exc.reason, "message": exc.message, "position": exc.position}}
    except MemoryError:
        out = {"error": {"reason": "EXTRACT_LIMIT", "message": f"reading {args.get('label')} needed more than {limits['memory_mb']} MB of memory and was stopped"}}
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    return 0


def _pdf_job(data: bytes, args: dict[str, Any]) -> Any:
    from gateway.extract.text import PdfPages, pdf_text

    pages = pdf_text(data, args["label"])
    if isinstance(pages, PdfPages):
        ocr_lines = [[page, sorted(lines.items())] for page, lines in sorted(pages.ocr_lines.items())]
        return {"pages": list(pages), "reader_messages": pages.reader_messages, "unread_pages": pages.unread_pages, "ocr_lines": ocr_lines}
    return {"pages": list(pages), "reader_messages": [], "unread_pages": []}


def _xlsx_job(data: bytes, args: dict[str, Any]) -> Any:
    from gateway.extract.table import extract_table
    from gateway.extract.template import EmailTemplate

    template = EmailTemplate.model_validate(args["template"])
    return [
        {"order": e.order.model_dump(mode="json"), "provenance": e.provenance, "confidence": e.confidence, "warnings": e.warnings}
        for e in extract_table(data, "xlsx", args["label"], template)
    ]


_JOBS = {"pdf_text": _pdf_job, "xlsx_table": _xlsx_job}

if __name__ == "__main__":
    sys.exit(_child())
