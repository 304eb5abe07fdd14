"""The rules engine: configured checks that accept, hold or reject each order.

Rules read master data through :class:`gateway.masterdata.model.MasterData` only (never the
store), so each can be tried with :class:`InMemoryMasterData` or a folder of CSV files.
"""

from gateway.rules.base import Decision, Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import BatchContext, OrderContext, OrderHistory
from gateway.rules.engine import RulesEngine
from gateway.rules.memory import InMemoryHistory, InMemoryMasterData, load_folder
from gateway.rules.registry import build_rules, validate_rule_configs

__all__ = [
    "BatchContext",
    "Decision",
    "Finding",
    "InMemoryHistory",
    "InMemoryMasterData",
    "OrderContext",
    "OrderHistory",
    "Outcome",
    "Rule",
    "RuleConfigBase",
    "RulesEngine",
    "build_rules",
    "load_folder",
    "validate_rule_configs",
]
