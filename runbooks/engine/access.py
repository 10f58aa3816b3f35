"""Who may ask for what on a cluster, and where: pure checks over the cluster's access policy.

Three rules, judged before a command reads or writes anything:

- **where**: a cluster with ``channels`` takes its commands in those channels only (the console
  counts as the channel ``console``, allowed only when listed);
- **who may start a runbook**: the cluster's ``requesters`` (or the runbook's own list, which
  replaces them for that runbook); a cluster that names no requesters lets its approvers start runs;
- **who may look**: a cluster with ``viewers`` shows its status, lag, alerts, runs and plans
  (dry runs) to its viewers, requesters and approvers only; without ``viewers`` anyone may look.

A refusal is a value saying what was wrong and who, or where, is allowed; the caller answers the
person privately and audits it. Run actions (approve, abort, resume, undo) stay judged by the run's
own policy (``runbooks.engine.approvals``); here they meet only the channel rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from runbooks.engine.approvals import Refusal, RefusalCode
from runbooks.engine.models import Actor, ApprovalPolicy

CONSOLE = "console"  # the place of a command typed in the console: not a Slack channel id


class Need(StrEnum):
    """What a command asks of a cluster."""

    VIEW = "view"  # read-only: status, lag, alerts, runs, run, and every --dry-run
    REQUEST = "request"  # start a runbook (the verb is the runbook's name)
    RUN_ACTION = "run_action"  # approve, abort, resume, undo: the run's policy decides who


class People(BaseModel):
    """Slack member ids and user-group ids (console ids like ``console:ana`` are member ids too)."""

    model_config = ConfigDict(frozen=True)

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def admit(self, actor: Actor) -> bool:
        return actor.id in self.users or any(g in self.groups for g in actor.groups)

    @property
    def nobody(self) -> bool:
        return not self.users and not self.groups

    def describe(self) -> str:
        """``U1, U2, or members of S1``: the people, as a refusal names them."""
        parts = list(self.users)
        if self.groups:
            parts.append("members of " + ", ".join(self.groups))
        if len(parts) <= 1:
            return parts[0] if parts else "nobody"
        return ", ".join(parts[:-1]) + ", or " + parts[-1]


class AccessPolicy(BaseModel):
    """A cluster's ``requesters``, ``runbooks``, ``viewers`` and ``channels`` (the clusters file)."""

    model_config = ConfigDict(frozen=True)

    requesters: People | None = None  # None: the cluster's approvers may start its runbooks
    runbooks: Mapping[str, People] = Field(default_factory=dict)  # per runbook: replaces `requesters`
    viewers: People | None = None  # None: anyone may look
    channels: tuple[str, ...] | None = None  # None: commands are taken anywhere

    def groups(self) -> tuple[str, ...]:
        """Every user group named here: a front end looks up which of them a command's actor is in."""
        named = [*(self.requesters.groups if self.requesters else ()), *(self.viewers.groups if self.viewers else ())]
        for people in self.runbooks.values():
            named += people.groups
        return tuple(dict.fromkeys(named))


def place_name(channel: str | None) -> str:
    if channel == CONSOLE:
        return "the console"
    return f"#{channel}" if channel else "no channel"


def _approvers(approval: ApprovalPolicy) -> People:
    return People(users=approval.approvers, groups=approval.approver_groups)


def requesters_of(access: AccessPolicy, approval: ApprovalPolicy, runbook: str) -> tuple[People, str]:
    """Who may start ``runbook``, and the refusal's sentence naming them (a template of runbook, cluster, who)."""
    if runbook in access.runbooks:
        return access.runbooks[runbook], "only the requesters of {runbook} on {cluster} ({who}) may."
    if access.requesters is not None:
        return access.requesters, "only the requesters of {cluster} ({who}) may."
    return _approvers(approval), "only the approvers of {cluster} ({who}) may, as it names no requesters."


def may_view(access: AccessPolicy, approval: ApprovalPolicy, actor: Actor) -> bool:
    if access.viewers is None:
        return True
    everyone = [access.viewers, _approvers(approval), *access.runbooks.values()]
    everyone.append(access.requesters if access.requesters is not None else _approvers(approval))
    return any(people.admit(actor) for people in everyone)


def authorize_channel(cluster: str, access: AccessPolicy, channel: str | None) -> Refusal | None:
    """Is a command for ``cluster`` taken in ``channel`` (``CONSOLE`` for the console)?"""
    if access.channels is None or (channel is not None and channel in access.channels):
        return None
    allowed = [place_name(c) for c in access.channels]
    listed = (", ".join(allowed[:-1]) + " or " + allowed[-1]) if len(allowed) > 1 else "".join(allowed) or "nowhere"
    return Refusal(code=RefusalCode.WRONG_CHANNEL,
                   message=f"Commands for {cluster} are taken in {listed} only (this was {place_name(channel)}).")


def authorize_request(
    cluster: str, access: AccessPolicy, approval: ApprovalPolicy, actor: Actor, verb: str, channel: str | None,
    *, need: Need,
) -> Refusal | None:
    """May ``actor`` use ``verb`` on ``cluster`` from ``channel``? None when allowed.

    The place is judged first: a command in the wrong channel is refused whoever typed it."""
    refusal = authorize_channel(cluster, access, channel)
    if refusal is not None or need is Need.RUN_ACTION:
        return refusal
    if need is Need.REQUEST:
        people, label = requesters_of(access, approval, verb)
        if people.admit(actor):
            return None
        if people.nobody:
            return Refusal(code=RefusalCode.NOT_REQUESTER,
                           message=f"Nobody may start {verb} on {cluster}: the clusters file lists no requesters "
                                   f"for it.")
        return Refusal(code=RefusalCode.NOT_REQUESTER,
                       message=f"{actor.id} may not start {verb} on {cluster}: "
                               + label.format(runbook=verb, cluster=cluster, who=people.describe()))
    if may_view(access, approval, actor):
        return None
    viewers = access.viewers.describe() if access.viewers is not None else ""
    return Refusal(code=RefusalCode.NOT_VIEWER,
                   message=f"{actor.id} may not use {verb} on {cluster}: only its viewers ({viewers}), requesters "
                           f"and approvers may.")
