"""Rollouts: the collector that samples and scores groups, and the packed batch the update trains on."""

from sgpo.rollouts.batch import RolloutBatch, pack_rollouts, token_logprobs
from sgpo.rollouts.collector import CollectedGroups, RolloutCollector

__all__ = ["CollectedGroups", "RolloutBatch", "RolloutCollector", "pack_rollouts", "token_logprobs"]
