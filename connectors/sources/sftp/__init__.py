"""SFTP: order files picked up from an inbox folder on an SFTP server, and files delivered to one.

Capabilities
    SftpSource     poll + ack: a stable file (or one with its done-marker) is downloaded into
                   memory and yielded; after the commit it moves to ``archive_path`` (or is
                   deleted); refused ones (symlinks, too large) move to the failed folder.
    SftpChannel    put(name, data): an atomic upload (``.<name>.part``, then renamed) into a
                   partner's folder, e.g. for acknowledgements.

Config keys
    ``SftpSourceConfig``: name, host, port, username, password, private_key_file, passphrase,
    known_hosts or host_key, timeout, remote_path, archive_path, failed_path, poll_seconds,
    stable_seconds, done_suffix, max_bytes, pattern, format, partner.
    ``SftpChannelConfig``: host, port, username, password, private_key_file, passphrase,
    known_hosts or host_key, timeout, remote_path.

Error mapping: see ``connectors.sources.sftp.channel`` (connections) and
``connectors.sources.sftp.source`` (polling). Host keys are always verified, never added.

Importing this package (or its ``config`` module) does not import paramiko.
"""
