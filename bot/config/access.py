"""The clusters file's keys for who may ask for what, and where (``runbooks.engine.access`` judges).

Per cluster::

    requesters: [U0ONCALL1]            # who may start its runbooks (default: its approvers)
    requester_groups: [S0ONCALL]
    runbooks:                          # per runbook: replaces requesters/requester_groups for it
      upgrade: {requester_groups: [S0KAFKA]}
    viewers: [U0SRE1]                  # who may look (status, lag, alerts, runs, dry runs); default: anyone
    viewer_groups: [S0SRE]
    channels: [C0KAFKAPROD, console]   # where its commands are taken (default: anywhere)

Refused at start, naming the key: a channel written as a name (``#kafka-prod``: Slack sends ids),
a user group that is not a group id, a runbook the bot does not have, an empty ``channels``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbooks.catalogue.steps import RUNBOOKS
from runbooks.engine.access import CONSOLE, AccessPolicy, People

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_IDS = (f"Slack channel ids (C0123ABCD, shown at the bottom of the channel's details), or `{CONSOLE}` "
               "to take them from the console too")


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _groups(groups: list[str] | None) -> list[str] | None:
    bad = [g for g in groups or () if not _GROUP_ID.match(g)]
    if bad:
        raise ValueError(f"{', '.join(repr(g)[:40] for g in bad[:3])} {'is' if len(bad) == 1 else 'are'} not a "
                         "user-group id: give Slack user-group ids (S0123ABCD, as usergroups.list shows them), "
                         "not @handles or names")
    return groups


class RunbookRequesters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requesters: list[str] = Field(default_factory=list)
    requester_groups: list[str] = Field(default_factory=list)

    check_group_ids = field_validator("requester_groups")(_groups)

    @model_validator(mode="after")
    def _says_who(self) -> RunbookRequesters:
        if not self.model_fields_set:
            raise ValueError("names nobody: give requesters and/or requester_groups (an empty list of both means "
                             "nobody may start this runbook), or remove the entry to use the cluster's requesters")
        return self

    def people(self) -> People:
        return People(users=tuple(self.requesters), groups=tuple(self.requester_groups))


class AccessConfig(BaseModel):
    """The access keys of a cluster's settings (``bot.config.settings.ClusterConfig`` extends it)."""

    model_config = ConfigDict(extra="forbid")

    requesters: list[str] | None = None
    requester_groups: list[str] | None = None
    runbooks: dict[str, RunbookRequesters] = Field(default_factory=dict)
    viewers: list[str] | None = None
    viewer_groups: list[str] | None = None
    channels: list[str] | None = None

    check_group_ids = field_validator("requester_groups", "viewer_groups")(_groups)

    @field_validator("runbooks", mode="before")
    @classmethod
    def _known_runbooks(cls, runbooks: object) -> object:
        # Before the entries are read, so a misspelt runbook is named even when an entry is wrong too.
        if not isinstance(runbooks, dict):
            raise ValueError(f"{_shown(runbooks)} is not a mapping: give runbook names ({', '.join(sorted(RUNBOOKS))}) "
                             "each with its requesters and/or requester_groups")
        unknown = [name for name in runbooks if name not in RUNBOOKS]
        if unknown:
            raise ValueError(f"{', '.join(repr(n)[:40] for n in unknown[:3])}: no such runbook; the runbooks are "
                             f"{', '.join(sorted(RUNBOOKS))}")
        return runbooks

    @field_validator("channels", mode="before")
    @classmethod
    def _channel_ids(cls, channels: object) -> object:
        if channels is None:
            return None
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ValueError(f"{_shown(channels)} is not a list of channel ids: give {CHANNEL_IDS}, e.g. "
                             "channels: [C0123ABCD]")
        if not channels:
            raise ValueError(f"an empty list takes commands nowhere: give {CHANNEL_IDS}; or remove the key to take "
                             "them in any channel")
        bad = [c for c in channels if c != CONSOLE and not _CHANNEL_ID.match(c)]
        if bad:
            raise ValueError(f"{', '.join(repr(c)[:40] for c in bad[:3])} {'is' if len(bad) == 1 else 'are'} not a "
                             f"channel id: give {CHANNEL_IDS}")
        return channels

    def access_policy(self) -> AccessPolicy:
        def people(users: list[str] | None, groups: list[str] | None) -> People | None:
            if users is None and groups is None:
                return None
            return People(users=tuple(users or ()), groups=tuple(groups or ()))

        return AccessPolicy(
            requesters=people(self.requesters, self.requester_groups),
            runbooks={name: entry.people() for name, entry in self.runbooks.items()},
            viewers=people(self.viewers, self.viewer_groups),
            channels=tuple(self.channels) if self.channels is not None else None,
        )
