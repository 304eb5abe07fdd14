"""X12 reader: bytes in, one `Document` per ST..SE transaction set out.

How a file is read, in three layers:

1. **Decode and split** (`source._Source`, `segmenter._Segmenter`, the ISA and its repairs
   in `isa`): the binary stream is decoded in chunks (a UTF-8 BOM is stripped; text that is
   not UTF-8 is read as Latin-1, with a warning) and split into segments with the separators
   each ISA declares: the element separator is the character after ``ISA``, ISA16 is the
   component separator and the character after ISA16 the segment terminator. What real
   partners get wrong is normalized here, with a warning where something changed: ISA fields
   not padded to fixed width, no-break-space padding, a newline, CR or space as terminator,
   segments indented or wrapped with CR/LF, versions pyx12 does not know (00300, 00400,
   00040, ...), several interchanges per file, each with its own separators. Input written
   the usual way (each segment followed by its terminator and a line break, or by the
   terminator alone) is split with whole-string operations, one interchange's part of the
   buffer at a time; anything else goes through a per-segment loop that fixes and reports
   it.
2. **Envelope checks** (`reader._Reader`, a pyx12 ``X12Reader`` per interchange): pyx12
   reads the (re-padded) ISA itself, with its ``RawX12File``, and its envelope bookkeeping
   checks every segment: SE/GE/IEA counts, control numbers, duplicates, segment ids,
   reported through ``pop_errors()`` / ``cleanup()``. Departures from the stock loop, all
   for speed and pinned by tests/unit/test_x12_parser.py to give the same errors: the
   segments after the ISA come from `_Segmenter` already split (RawX12File splitting them
   again cost ~10% of a translate run and checks nothing); pyx12's checks get a light
   segment (`_LightSegment`) with the interface they use instead of pyx12's ``Segment``
   object tree, which cost more than parsing and mapping together; and segments are checked
   a batch at a time (`_Reader.checked`), the ordinary ones through one reusable
   `_LightSegment`, with each segment's errors kept on it instead of being popped after
   every segment. `_Reader._check` also keeps pyx12's loop stack in step on broken envelopes
   (an SE without ST made pyx12 raise IndexError).
3. **Events** (`parser.X12Parser`): `InterchangeOpened`, then per transaction a `Document`
   (body: a list of segments, each ``[segment id, element, ...]``; a composite element is a
   list of components) or a `DocumentRejected`, then `InterchangeClosed` with the sha256 of
   the interchange's normalized text and its group/interchange-level errors. Only envelope
   segments, segments with errors and segments outside a transaction set are looked at one
   by one; the ordinary segments between them go into the body a run at a time.

Memory stays flat: one 64 KiB chunk of input and the transaction set being assembled are
held at a time (45 MB peak RSS for one 100,000-order interchange, bench/bench_x12.py).

Reason codes
    ParseError (the file cannot be read at all):
        NOT_X12          empty, binary, or does not start with an ISA segment
        X12_SEPARATORS   the ISA declares separators that cannot work (equal, letters, digits,
                         blanks)
        X12_ISA          the ISA segment itself is unreadable (cut off, elements missing)
    Problems after the first interchange (junk between interchanges, an unreadable later ISA)
    are reported in InterchangeClosed.errors of the interchange before them instead.
    DocumentRejected (one transaction set; the others go on):
        X12_SE_COUNT           SE01 is not the number of segments from ST to SE
        X12_CONTROL_MISMATCH   SE02 differs from ST02
        X12_DUPLICATE_CONTROL  ST02 repeats another transaction set in the same group
        X12_TRUNCATED          no SE: the transaction set ends at GE, IEA, ISA, ST or end of file
        X12_EMPTY_SEGMENT      an empty segment (two terminators in a row) inside it
        X12_SEGMENT            a segment id that is not 2-3 upper-case letters/digits
        X12_NO_GROUP           ST outside a GS..GE functional group
"""

from gateway.formats.x12.parser import X12Parser, X12Segments, parse_x12

__all__ = ["X12Parser", "X12Segments", "parse_x12"]
