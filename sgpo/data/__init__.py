"""Data policy: filters, allocation rules, curricula (pure, registered) and the data module."""

from sgpo.data.allocation import ALLOCATIONS
from sgpo.data.curriculum import CURRICULA, Phase
from sgpo.data.filters import FILTERS

__all__ = ["ALLOCATIONS", "CURRICULA", "FILTERS", "Phase"]
