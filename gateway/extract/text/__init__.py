r"""PDF attachments and e-mail bodies, read through a partner's text template.

A PDF order or an order typed into an e-mail does not say what each value is. The
``text:`` section of ``mappings/<partner>/email.yaml`` says where to look
(`mappings/examples/email_text.yaml` is a commented example)::

    text:
      fields:                          # a header field of the order -> how to find its value
        po_number: {labels: ["PO Number", "Purchase Order", "PO #"]}
        order_date: {labels: ["Order Date", "Date"], type: date}
        currency: {pattern: '(?i)\bcurrency\b\W*([A-Z]{3})\b'}
      blocks:                          # an address block -> a party of the order
        ship_to: {labels: ["Ship To", "Deliver To"], lines: 6}
      lines:                           # the table of order lines
        start: '(?i)^\s*item\b.*\bqty\b'          # its header line; rows follow it
        row: '^\s*(?P<sku>\S+)\s+(?P<description>.+?)\s+(?P<quantity>\d[\d.,]*)\s+(?:(?P<uom>[A-Z]{2,3})\s+)?(?P<unit_price>\d[\d.,]*)(?:\s+(?P<line_total>\d[\d.,]*))?\s*$'
        stop: '(?i)^\s*(sub)?total\b'             # the first line after the table
        total: '(?i)^\s*total\b\D*([\d.,]+)'      # the stated order total (cross-check)
        skip: ['(?i)^\s*page \d+ of \d+\s*$']    # lines inside the table to ignore

Everything is checked when the template is loaded: every regular expression compiles (the
error names the field), `row` has a ``quantity`` group and no group other than the line
fields (sku, buyer_part_number, gtin, description, quantity, uom, unit_price,
line_number) and ``line_total``, `pattern` and `total` have exactly one group, and every
field path is a real header field of the canonical order (with a "did you mean").

How a document is read
    Text is taken line by line. A *phrase* is a run of text with at most single spaces
    in it; two or more spaces (or a tab) separate phrases, as columns in a PDF or an
    aligned e-mail do. A label is found at the start of a phrase, case-insensitively,
    and its value is, in order of preference: the rest of that phrase after an optional
    ``:``/``#`` (``PO Number: 123``, ``PO # 123``); the next phrase on the line
    (``PO Number     123``); the phrase under the label on the next line, in the label's
    column (``PO Number`` above ``123``, a header row). Inside a labelled phrase, another
    configured label with a colon starts a new phrase (``PO: 1 Date: 2/3``). Dates go through
    `parse_date` (the template's `date_formats`, `day_first`), amounts through
    `parse_amount` (`decimal_comma`), currencies and e-mail addresses are checked. The
    first label that yields a usable value wins; the same label with a different value
    elsewhere in the document makes the value ambiguous (0.6, with a warning).

    A block (an address) is the label's line (what follows the label) and the lines
    under it, in the label's column, up to `lines` lines, a blank line, another label or
    the table. Its first line is the party's name, its middle lines address_lines; its
    last line, if it reads as ``City, ST 12345[-6789]`` (US), ``City, ON A1A 1A1``
    (Canada), ``12345 City`` / ``D-12345 City`` / ``1012 AB City`` (Europe) or ``City
    SW1A 1AA`` (UK), gives city, region and postal_code; a line that is a country name
    or ISO code gives country (as an ISO 3166 alpha-2 code).

    The line table starts after the first line matching `start` (without `start`, every
    line matching `row` is a line item) and ends at a line matching `stop` (or a blank
    line, with `ends_at_blank_line`). Inside it, each non-blank line must match `row`,
    `continuation` (more description for the row above) or `skip`; any other line is
    reported as a warning and puts the order in review (see below), so a row the
    pattern misses never silently drops an item. When a PDF page ends inside the
    table, the table goes on at the top of the next page, or after the header line if
    the next page repeats it (then what comes before it, a repeated letterhead, is
    not part of the table).

The message body (Channel.EMAIL)
    Reading stops at the first line that starts what the buyer did not write now, so an
    earlier order quoted below a reply is never ordered again: a line starting with
    ``>``; ``On <date>, <someone> wrote:`` (also over two lines, and Am/Le/El ... schrieb/a
    écrit/escribió); ``-----Original Message-----``; an Outlook header (``From:`` with
    ``Sent:``/``Date:`` and ``Subject:`` in the next five lines); the signature
    delimiter ``-- ``. A warning says where. An order forwarded inline is cut the same
    way (forward it as an attachment); a false stop only loses fields (the order is
    quarantined as EXTRACT_NO_PO/NO_LINES), a missed one could order twice.

Confidence (see `gateway.extract.base`)
    base          1.0 for the message body; 0.9 for a PDF (its text layer has no reading
                  order; positions come from layout)
    labels        the first label: base; another label, or a value under the label (not
                  beside it): base - 0.1 for the body (0.9, the guide's "alternative
                  label"), base - 0.05 for a PDF (0.85, already at the layout cap)
    values        never above what `parse_amount`/`parse_date` say (1,234 -> 0.6)
    blocks        lines as labels; city, region, postal code and country 0.8 at most
                  (parsed by a heuristic)
    cross-checks  quantity x unit price != the row's line total: that line's quantity and
                  unit price 0.5; lines do not add up to the stated subtotal (or total):
                  that total 0.5 and every unit price 0.6. A row whose line total
                  confirms a reading of an ambiguous 1,000 raises it from 0.6 to 0.8.
    unread rows   a table line that matches no pattern, an image-only page in a PDF, or a
                  document cut at the line limit: 0.5 on the key ``lines`` (there is no
                  value to hang it on), with the place as its provenance.

Limits (so a template's regular expressions cannot run away on hostile text)
    A line is cut at 2,000 characters and a document at 5,000 lines (both with a
    warning), and the patterns see each line with every run of three or more spaces
    shortened to two: columns stay two spaces apart (``\s{2,}`` separates them),
    indentation shows as two leading spaces. Python's `re` has no timeout; without the
    shortening, a row pattern such as the example's (``\s+(?P<description>.+?)\s+``) takes
    about 17 s on one line of 2,000 spaces (cubic backtracking), with it 0.25 ms. A
    pattern with nested quantifiers (``(a+)+``) can still be slow: keep them simple.
    Labels and blocks use the line as written (its columns). Measured with the example
    template, the worst hostile 10 MB body tried (5,000 lines of 2,000 characters) takes
    about 4 s. A PDF must be at most 10 MB and 50 pages.

The PDF text layer
    `pdf_text` uses pdfplumber's words (``extract_words``) and lays them out itself.
    Measured on the fixture: the default ``extract_text()`` keeps table rows on one line
    but joins everything on a line with single spaces, so side-by-side blocks (Bill To |
    Ship To) and label columns (``PO Number: 123 Vendor No: V-7``) merge and cannot be
    told apart; ``extract_text(layout=True)`` keeps the columns but maps lines onto a
    fixed 13 pt grid, which inserts blank lines that are not on the page (in a trial
    layout with a 14 pt line pitch, one inside the Ship To block, which ends the block)
    and stretches spaces inside phrases (``ACME  Retail``). Here words sharing a baseline make a line (rows stay whole),
    words closer than 0.8 em are one phrase (single spaces), a wider gap starts a new
    phrase at its column position (at least two spaces), and one blank line stands for
    a vertical gap taller than 0.8 of a line.

Reason codes (ExtractionError)
    EXTRACT_PDF_INVALID    not a PDF, or one the reader cannot parse
    EXTRACT_PDF_ENCRYPTED  the PDF needs a password
    EXTRACT_PDF_LIMIT      larger than 10 MB or more than 50 pages
    EXTRACT_NO_TEXT        no page has text (a scan: the gateway does not OCR)
    EXTRACT_NO_TEMPLATE    the template has no ``text:`` section
    EXTRACT_NO_PO          no PO number found (the labels or pattern tried are named)
    EXTRACT_NO_LINES       no line item found (what was tried is named)
    EXTRACT_INVALID        the values found do not make a valid order (`Draft.build`)
"""

from gateway.extract.text.pdf import MAX_PDF_BYTES, MAX_PDF_PAGES, PdfPages, pdf_text
from gateway.extract.text.reader import extract_text
from gateway.extract.text.spec import (
    LINE_FIELDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    TextBlock,
    TextField,
    TextLines,
    TextSpec,
)

__all__ = [
    "LINE_FIELDS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "MAX_PDF_BYTES",
    "MAX_PDF_PAGES",
    "PdfPages",
    "TextBlock",
    "TextField",
    "TextLines",
    "TextSpec",
    "extract_text",
    "pdf_text",
]
