"""EDIFACT reader: bytes in, one `Document` per UNH..UNT message out.

How a file is read, in three layers:

1. **Split and decode** (`scan._scan`, before anything is yielded): a UTF-8 BOM is stripped
   (warning) and the file is cut into interchanges (UNA/UNB .. UNZ) by a release-aware scan
   for the service segments only, with each interchange's own separators (its UNA, or the
   defaults ``:+,? '``); pydifact would silently merge two interchanges in one string. Each
   interchange is then decoded strictly in the character set its UNB syntax identifier
   declares (`CHARSETS`: UNOA/UNOB ASCII, UNOC Latin-1, UNOD Latin-2, UNOE Cyrillic, UNOF
   Greek, UNOW/UNOY UTF-8, ...). An undecodable byte is a ParseError naming its offset,
   never ``errors="ignore"``, which silently changes names and addresses. Each UNB is read
   here too, so a file whose envelopes cannot be read fails before any event is yielded.
2. **Tokenize** (`interchange._Interchange`, `tokenizer`): the interchange text is cut at
   its UNH/UNG/UNE/UNZ segments (the same cheap scan) and each piece is tokenized by
   pydifact (its ``Tokenizer`` and ``Parser.convert_tokens_to_raw_segments``: release
   characters, composites, custom separators), once. pydifact's ``Segment`` objects and
   directory validation are skipped: the wheel has no directories, so validation only emits
   ``MissingImplementationWarning``, and building the objects cost more than tokenizing.
   Line breaks right after a segment terminator are formatting; any other line break means
   the file was hard-wrapped (80-column VAN mailboxes). Both are removed before tokenizing,
   with a warning for wrapping. pydifact stops at the first syntax error, so each message is
   tokenized on its own: a syntax error rejects that message only.
3. **Checks and events** (`interchange`, `parser.EdifactParser`): what pydifact does not
   check is checked here: UNT segment count and reference, UNE and UNZ counts and
   references, a missing UNE or UNZ, segments outside any message, a message or file cut
   off. Events: `InterchangeOpened`, per message a `Document` (body: `EdifactMessage`) or a
   `DocumentRejected`, then `InterchangeClosed` with the sha256 of the interchange's
   normalized text (the UNA, then every segment with its terminator, line breaks removed)
   and its envelope-level errors.

Positions read ``segment N (line L)``. For documents and parse errors N counts the segments of
the file, UNA included; inside an `EdifactMessage` (mapping positions) N counts from UNH = 1,
as UNT does. pydifact's own line numbers are wrong ("line 0"), so lines are counted here,
lazily: only errors and traces need them.

The whole input is held in memory (pydifact tokenizes a string; EDIFACT files are small), and
one interchange's text plus the message being tokenized are worked on at a time.

Reason codes
    ParseError (the file cannot be read; raised before any event):
        NOT_EDIFACT       empty, UTF-16, or not starting with UNA or UNB (TRADACOMS STX files
                          among them)
        EDIFACT_UNA       a UNA is cut off or declares separators that cannot work
        EDIFACT_UNB       a UNB is missing, cut off, or has no syntax identifier
        EDIFACT_CHARSET   a byte that the declared character set does not have
        EDIFACT_SYNTAX    pydifact cannot tokenize a UNB segment
        DANGLING_RELEASE  the file ends with a release character that releases nothing
    DocumentRejected (one message; the others go on):
        EDIFACT_UNT_COUNT       UNT 0074 is not the number of segments from UNH to UNT
        EDIFACT_UNT_REF         UNT 0062 differs from UNH 0062
        EDIFACT_TRUNCATED       no UNT: the message ends at UNH/UNG/UNE/UNZ, at the next
                                interchange or at the end of the file, or its last segment
                                has no terminator
        EDIFACT_SYNTAX          pydifact cannot tokenize the message, or a segment tag is not
                                three upper-case letters/digits (an empty segment, ...)
        EDIFACT_UNH             UNH without message reference (0062) or message type (0065)
        EDIFACT_DUPLICATE_REF   UNH 0062 repeats an earlier message of the same interchange
    InterchangeClosed.errors (sentences): UNZ/UNE counts and references, a missing UNZ or UNE,
    segments outside any message, bytes between interchanges that are not EDIFACT, an
    interchange control reference repeated in the file.
"""

from gateway.formats.edifact.message import EdifactMessage
from gateway.formats.edifact.parser import EdifactParser, parse_edifact
from gateway.formats.edifact.syntax import CHARSETS

__all__ = ["CHARSETS", "EdifactMessage", "EdifactParser", "parse_edifact"]
