"""The fourlb policy pack: `pulumi preview --policy-pack policy` (see __main__.py)."""
