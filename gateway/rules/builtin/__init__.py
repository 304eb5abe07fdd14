"""The built-in rule types, one module each (listed by name in gateway.rules.registry)."""
