"""IMAP mailbox source: order mails are read from a folder of an IMAP mailbox."""
