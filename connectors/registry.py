"""The built-in source and connector types, as data: type name -> where its code lives.

Nothing here is imported until a configuration uses the type (see gateway.plugins, which
also finds the types installed packages add through entry points). To add a built-in: a
folder under connectors/sources/ or connectors/targets/ with config.py and the class, and
one line here; the source and target contract suites check that every line is covered.
"""

from __future__ import annotations

from gateway.plugins import PluginSpec

__all__ = ["SOURCES", "TARGETS"]

SOURCES: dict[str, PluginSpec] = {
    "folder": PluginSpec(
        "folder", "connectors.sources.folder.source:FolderSource", "connectors.sources.folder.config:FolderSourceConfig"
    ),
    "sftp": PluginSpec("sftp", "connectors.sources.sftp.source:SftpSource", "connectors.sources.sftp.config:SftpSourceConfig"),
    "cart_poll": PluginSpec(
        "cart_poll",
        "connectors.sources.cartpoll.source:CartPollSource",
        "connectors.sources.cartpoll.config:CartPollConfig",
        needs_store=True,
    ),
    "imap": PluginSpec(
        "imap", "connectors.sources.imap.source:ImapSource", "connectors.sources.imap.config:ImapSourceConfig", needs_store=True
    ),
}

TARGETS: dict[str, PluginSpec] = {
    "http_json": PluginSpec(
        "http_json",
        "connectors.targets.http_json.connector:HttpJsonConnector",
        "connectors.targets.http_json.config:HttpJsonConfig",
    ),
    "file": PluginSpec("file", "connectors.targets.file.connector:FileConnector", "connectors.targets.file.config:FileTargetConfig"),
    "tryton": PluginSpec(
        "tryton", "connectors.targets.tryton.connector:TrytonConnector", "connectors.targets.tryton.config:TrytonConfig"
    ),
    "erpnext": PluginSpec(
        "erpnext", "connectors.targets.erpnext.connector:ERPNextConnector", "connectors.targets.erpnext.config:ERPNextConfig"
    ),
    "hubspot": PluginSpec(
        "hubspot", "connectors.targets.hubspot.connector:HubSpotConnector", "connectors.targets.hubspot.config:HubSpotConfig"
    ),
    "odoo": PluginSpec("odoo", "connectors.targets.odoo.connector:OdooConnector", "connectors.targets.odoo.config:OdooConfig"),
    "memory": PluginSpec(
        "memory", "connectors.targets.memory.connector:MemoryConnector", "connectors.targets.memory.config:MemoryTargetConfig"
    ),
    "shipstation": PluginSpec("shipstation", "connectors.targets.shipstation.connector:ShipStationConnector", "connectors.targets.shipstation.config:ShipStationConfig"),
    "easypost": PluginSpec("easypost", "connectors.targets.easypost.connector:EasyPostConnector", "connectors.targets.easypost.config:EasyPostConfig"),
}
