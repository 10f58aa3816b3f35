"""Who may ask for what on a cluster, and where (runbooks.engine.access): each rule on its own."""

from __future__ import annotations

import pytest

from runbooks.engine.access import CONSOLE, AccessPolicy, Need, People, authorize_request, may_view
from runbooks.engine.approvals import RefusalCode
from runbooks.engine.models import Actor, ApprovalPolicy

pytestmark = pytest.mark.timeout(5)

APPROVAL = ApprovalPolicy(approvers=("U0APP",), approver_groups=("S0LEADS",))
ONCALL = Actor(id="U0ONC")
KAFKA_TEAM = Actor(id="U0KT", groups=("S0KAFKA",))
OUTSIDER = Actor(id="U0OUT", groups=("S0OTHER",))
APPROVER = Actor(id="U0APP")
LEAD = Actor(id="U0LEAD", groups=("S0LEADS",))
VIEWER = Actor(id="U0VIEW")
ON_CALL_AND_KAFKA = AccessPolicy(
    requesters=People(users=("U0ONC", "U0ONC2"), groups=("S0ONCALL",)),
    runbooks={"upgrade": People(groups=("S0KAFKA",))},
)


def request(access: AccessPolicy, actor: Actor, verb: str = "restart", channel: str | None = "C0ANY",
            need: Need = Need.REQUEST) -> tuple[RefusalCode, str] | None:
    refusal = authorize_request("prod", access, APPROVAL, actor, verb, channel, need=need)
    return None if refusal is None else (refusal.code, refusal.message)


def test_without_requesters_the_approvers_and_only_they_may_start_runbooks() -> None:
    assert request(AccessPolicy(), APPROVER) is None
    assert request(AccessPolicy(), LEAD) is None, "a member of an approver group is an approver"
    assert request(AccessPolicy(), OUTSIDER) == (
        RefusalCode.NOT_REQUESTER,
        "U0OUT may not start restart on prod: only the approvers of prod (U0APP, or members of S0LEADS) may, "
        "as it names no requesters.")


def test_requesters_by_id_or_group_may_start_runbooks_and_nobody_else() -> None:
    assert request(ON_CALL_AND_KAFKA, ONCALL) is None
    assert request(ON_CALL_AND_KAFKA, Actor(id="U0NEW", groups=("S0ONCALL",))) is None
    assert request(ON_CALL_AND_KAFKA, APPROVER) == (
        RefusalCode.NOT_REQUESTER,
        "U0APP may not start restart on prod: only the requesters of prod (U0ONC, U0ONC2, or members of S0ONCALL) "
        "may."), "once requesters are listed, the list is exact: approving is not requesting"
    assert request(ON_CALL_AND_KAFKA, OUTSIDER) is not None


def test_a_runbook_of_its_own_replaces_the_cluster_requesters_for_that_runbook_only() -> None:
    assert request(ON_CALL_AND_KAFKA, KAFKA_TEAM, "upgrade") is None
    assert request(ON_CALL_AND_KAFKA, ONCALL, "upgrade") == (
        RefusalCode.NOT_REQUESTER,
        "U0ONC may not start upgrade on prod: only the requesters of upgrade on prod (members of S0KAFKA) may.")
    assert request(ON_CALL_AND_KAFKA, ONCALL, "restart") is None
    assert request(ON_CALL_AND_KAFKA, KAFKA_TEAM, "restart") is not None, "the override is for upgrade only"


def test_a_runbook_with_nobody_listed_may_be_started_by_nobody() -> None:
    access = AccessPolicy(runbooks={"scale": People()})
    assert request(access, APPROVER, "scale") == (
        RefusalCode.NOT_REQUESTER, "Nobody may start scale on prod: the clusters file lists no requesters for it.")
    assert request(access, APPROVER, "restart") is None


def test_without_viewers_anyone_may_look_but_not_start() -> None:
    assert request(AccessPolicy(), OUTSIDER, "status", need=Need.VIEW) is None
    assert may_view(AccessPolicy(), APPROVAL, OUTSIDER)


def test_with_viewers_only_viewers_requesters_and_approvers_may_look() -> None:
    access = ON_CALL_AND_KAFKA.model_copy(update={"viewers": People(users=("U0VIEW",), groups=("S0SRE",))})
    for allowed in (VIEWER, Actor(id="U0X", groups=("S0SRE",)), ONCALL, KAFKA_TEAM, APPROVER, LEAD):
        assert request(access, allowed, "lag", need=Need.VIEW) is None, allowed
    assert request(access, OUTSIDER, "lag", need=Need.VIEW) == (
        RefusalCode.NOT_VIEWER,
        "U0OUT may not use lag on prod: only its viewers (U0VIEW, or members of S0SRE), requesters and approvers "
        "may.")
    assert request(access, VIEWER, "restart") is not None, "a viewer may look, not start a runbook"


def test_viewers_include_the_approvers_when_no_requesters_are_named() -> None:
    access = AccessPolicy(viewers=People(users=("U0VIEW",)))
    assert may_view(access, APPROVAL, APPROVER) and may_view(access, APPROVAL, LEAD)
    assert not may_view(access, APPROVAL, ONCALL)


@pytest.mark.parametrize("need", list(Need))
def test_a_cluster_bound_to_channels_takes_no_command_elsewhere_whoever_asks(need: Need) -> None:
    access = AccessPolicy(channels=("C0PROD", "C0OPS"))
    assert request(access, APPROVER, channel="C0OPS", need=need) is None
    assert request(access, APPROVER, channel="D0DM", need=need) == (
        RefusalCode.WRONG_CHANNEL, "Commands for prod are taken in #C0PROD or #C0OPS only (this was #D0DM).")


def test_the_console_is_a_place_a_bound_cluster_must_list() -> None:
    bound = AccessPolicy(channels=("C0PROD",))
    assert request(bound, APPROVER, channel=CONSOLE) == (
        RefusalCode.WRONG_CHANNEL, "Commands for prod are taken in #C0PROD only (this was the console).")
    assert request(AccessPolicy(channels=("C0PROD", CONSOLE)), APPROVER, channel=CONSOLE) is None
    assert request(AccessPolicy(), APPROVER, channel=CONSOLE) is None, "unbound: the console too"


def test_a_command_with_no_channel_is_not_taken_for_the_console() -> None:
    bound = AccessPolicy(channels=("C0PROD", CONSOLE))
    assert request(bound, APPROVER, channel=None) == (
        RefusalCode.WRONG_CHANNEL, "Commands for prod are taken in #C0PROD or the console only (this was no channel).")


def test_the_channel_is_judged_before_the_person() -> None:
    access = AccessPolicy(requesters=People(users=("U0ONC",)), channels=("C0PROD",))
    refusal = request(access, OUTSIDER, channel="C0RANDOM")
    assert refusal is not None and refusal[0] is RefusalCode.WRONG_CHANNEL


def test_run_actions_meet_only_the_channel_rule() -> None:
    """Approve, resume and undo are judged by the run's own policy (runbooks.engine.approvals)."""
    access = AccessPolicy(requesters=People(users=("U0ONC",)), viewers=People(users=("U0VIEW",)))
    assert request(access, OUTSIDER, "resume", need=Need.RUN_ACTION) is None


@pytest.mark.parametrize(("people", "shown"), [
    (People(), "nobody"),
    (People(users=("U1",)), "U1"),
    (People(groups=("S1", "S2")), "members of S1, S2"),
    (People(users=("U1", "U2"), groups=("S1",)), "U1, U2, or members of S1"),
])
def test_people_are_named_as_a_refusal_lists_them(people: People, shown: str) -> None:
    assert people.describe() == shown


def test_the_groups_a_front_end_looks_up_are_every_group_named_once() -> None:
    access = ON_CALL_AND_KAFKA.model_copy(update={"viewers": People(groups=("S0SRE", "S0ONCALL"))})
    assert access.groups() == ("S0ONCALL", "S0SRE", "S0KAFKA")
