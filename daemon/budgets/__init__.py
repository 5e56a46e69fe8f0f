"""Budgets' machinery: which apply to whom (book.py), this process's leases on them (leases.py),
and the limits set through the API as this process last read them (limits.py). The stage is
daemon/pipeline/budgets.py; the arithmetic, daemon/core/budget.py."""
