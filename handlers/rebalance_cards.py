"""Rebalance cards: every KafkaRebalance of a managed cluster that reaches ProposalReady gets one
card in the cluster's channel, which follows the resource to its end; its buttons set
``strimzi.io/rebalance`` for an approver of the cluster.

Every replica may sync (the monitor lease makes it one at a time, but a hand-over may overlap) and
any replica may take a click, so nothing here trusts memory: a card's record is read from the
store and written back with compare-and-set, and a new card additionally needs the post claim
(SET NX per card), so two replicas never post the same card twice and a restarted bot posts none
again. A press is judged on the resource read at the moment of the press
(``runbooks.rules.rebalance.check_press``) and written with a check-and-write of that state
(``KafkaRebalances.annotate``): a card whose resource moved on refuses, and nothing is written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping

from handlers.clusters import ManagedCluster
from handlers.ports import Clock, VersionConflict
from handlers.rebalances import (
    KafkaRebalances,
    RebalanceCardStore,
    RebalanceChannel,
    RebalanceGone,
    RebalanceMoved,
)
from handlers.replies import Reply
from runbooks.engine.approvals import policy_approver
from runbooks.engine.models import Actor
from runbooks.rules.rebalance import (
    REBALANCE_ANNOTATION,
    KafkaRebalanceView,
    RebalanceAction,
    RebalanceState,
    approvals_missing,
    check_press,
    wants_card,
)
from runbooks.rules.rebalance_card import (
    CardMessage,
    Press,
    RebalanceCard,
    RebalanceCardView,
    approvals_for,
    card_view,
    proposal_id,
)

log = logging.getLogger(__name__)

POST_CLAIM_TTL_S = 600.0  # a replica that died mid-post blocks a re-post this long
CAS_ATTEMPTS = 5
MAX_REFUSALS = 50  # refused presses kept in a card's record, newest last


def card_id(cluster: str, rebalance: KafkaRebalanceView) -> str:
    return f"{cluster}/{rebalance.namespace}/{rebalance.name}/{rebalance.uid}"


class LoggingRebalanceChannel:
    """The channel until a front end attaches its own: cards are decided and stored, and logged."""

    async def post(self, channel: str | None, card_id: str, view: RebalanceCardView) -> CardMessage:
        log.warning("rebalance card (no channel attached): %s", view.headline)
        return CardMessage(channel=None, id=f"log:{card_id}")

    async def update(self, ref: CardMessage, card_id: str, view: RebalanceCardView) -> None:
        log.info("rebalance card update (no channel attached): %s", view.headline)


def _fingerprint(view: RebalanceCardView) -> str:
    return hashlib.sha256(view.model_dump_json().encode()).hexdigest()[:16]


class RebalanceCards:
    def __init__(
        self, *, clusters: Mapping[str, ManagedCluster], rebalances: KafkaRebalances, store: RebalanceCardStore,
        clock: Clock, owner: str, channel: RebalanceChannel | None = None, mention: Callable[[str], str] = str,
    ) -> None:
        self.clusters = dict(clusters)
        self._rebalances = rebalances
        self._store = store
        self._clock = clock
        self._owner = owner
        self.channel: RebalanceChannel = channel or LoggingRebalanceChannel()
        self.mention = mention  # how the channel shows a user id (Slack sets <@U1>)

    # -- following the resources -----------------------------------------------------------------

    async def sync(self, cluster: ManagedCluster) -> None:
        """One look at the cluster's rebalances: post the cards that are due, edit those that changed,
        and close the cards whose resource is gone."""
        seen = {card_id(cluster.name, r): r for r in await self._rebalances.list_rebalances(cluster.ref)}
        cards = {card.id: (card, version) for card, version in await self._store.load_cluster(cluster.name)}
        for cid, rebalance in seen.items():
            if cid in cards:
                await self._show(cluster, cards[cid][0], rebalance)
            elif wants_card(rebalance):
                await self._open(cluster, rebalance)
        for cid, (card, _) in cards.items():
            if cid not in seen:
                await self._close(cluster, card)

    async def _open(self, cluster: ManagedCluster, rebalance: KafkaRebalanceView) -> None:
        card = RebalanceCard(cluster=cluster.name, namespace=rebalance.namespace, name=rebalance.name,
                             uid=rebalance.uid)
        try:
            await self._store.save(card, expected_version=0)
        except VersionConflict:
            return  # another replica opened it
        await self._show(cluster, card, rebalance)

    async def _view(self, cluster: ManagedCluster, card: RebalanceCard,
                    rebalance: KafkaRebalanceView | None) -> RebalanceCardView:
        progress = None
        if rebalance is not None and rebalance.state is RebalanceState.REBALANCING:
            try:
                progress = await self._rebalances.progress(cluster.ref, rebalance)
            except Exception as exc:  # the card says "not reported yet"; the next sync reads again
                log.warning("progress of %s unreadable: %s: %s", card.id, type(exc).__name__, exc)
        return card_view(rebalance, card, cluster.policy, self._clock.now(), progress=progress, mention=self.mention)

    async def _show(self, cluster: ManagedCluster, card: RebalanceCard, rebalance: KafkaRebalanceView | None) -> None:
        """Post the card if it has no message yet, else edit it if what it says changed."""
        view = await self._view(cluster, card, rebalance)
        shown = _fingerprint(view)
        if card.message is not None and card.shown_fingerprint == shown:
            return
        if card.message is None:
            if not await self._store.claim_post(card.id, self._owner, POST_CLAIM_TTL_S):
                return  # another replica is posting it
            try:
                ref = await self.channel.post(cluster.channel, card.id, view)
            except Exception as exc:  # no message recorded: the next sync tries again
                log.warning("could not post rebalance card %s: %s: %s", card.id, type(exc).__name__, exc)
                await self._store.release_post(card.id, self._owner)
                return
            await self._record(card.id, lambda c: c.model_copy(update={
                "message": c.message or ref, "shown_fingerprint": shown, "shown_state": view.state}))
            return
        try:
            await self.channel.update(card.message, card.id, view)
        except Exception as exc:  # the record is not marked: the next sync edits again
            log.warning("could not update rebalance card %s: %s: %s", card.id, type(exc).__name__, exc)
            return
        await self._record(card.id, lambda c: c.model_copy(update={"shown_fingerprint": shown,
                                                                   "shown_state": view.state}))

    async def _close(self, cluster: ManagedCluster, card: RebalanceCard) -> None:
        if card.message is not None:
            await self._show(cluster, card, None)
        loaded = await self._store.load(card.id)
        if loaded is not None:
            await self._store.delete(loaded[0], expected_version=loaded[1])

    async def _record(self, cid: str, change: Callable[[RebalanceCard], RebalanceCard]) -> RebalanceCard | None:
        """Apply ``change`` to the stored record, whatever else changed meanwhile (compare-and-set, retried)."""
        for _ in range(CAS_ATTEMPTS):
            loaded = await self._store.load(cid)
            if loaded is None:
                return None
            changed = change(loaded[0])
            try:
                await self._store.save(changed, expected_version=loaded[1])
            except VersionConflict:
                continue
            return changed
        log.warning("rebalance card %s: could not record a change after %d attempts", cid, CAS_ATTEMPTS)
        return None

    # -- people's presses ------------------------------------------------------------------------

    async def press(self, cid: str, action: RebalanceAction, shown: RebalanceState, actor: Actor) -> Reply:
        """A button press on card ``cid`` drawn for state ``shown``: judged, then written. A refusal
        changes nothing and says why. The card is edited by ``redraw`` (the front end calls it after
        answering Slack, so a slow ``chat.update`` never holds the ack)."""
        loaded = await self._store.load(cid)
        cluster = self.clusters.get(loaded[0].cluster) if loaded is not None else None
        if loaded is None or cluster is None:
            return Reply.error("This rebalance card is no longer followed (its KafkaRebalance was deleted, or the "
                               "cluster is not managed any more): nothing was changed.")
        card = loaded[0]
        name = f"{card.namespace}/{card.name}"
        if not policy_approver(cluster.policy, actor):
            await self._audit_refusal(cid, actor, action, "not_approver")
            return Reply.error(f"{actor.id} is not an approver for cluster {cluster.name}: nothing was changed.")
        rebalance = await self._rebalances.get_rebalance(cluster.ref, card.name)
        if rebalance is None or rebalance.uid != card.uid:
            return Reply.error(f"KafkaRebalance {name} was deleted (or replaced by a new one): nothing was changed.")
        refusal = check_press(rebalance, action, actor, cluster.policy, cluster=cluster.name, shown=shown,
                              approved_by=approvals_for(card, rebalance))
        if refusal is not None:
            await self._audit_refusal(cid, actor, action, refusal.code.value)
            return Reply.error(refusal.message)
        now = self._clock.now()
        if action is RebalanceAction.APPROVE:
            # The approval is recorded first (compare-and-set), and only the press whose write completes
            # the N-of-M count sets the annotation: two approvers pressing at once make one write, not none.
            proposal = proposal_id(rebalance)
            updated = await self._record(cid, lambda c: c.model_copy(update={
                "proposal": proposal,
                "approved_by": tuple(dict.fromkeys((*approvals_for(c, rebalance), actor.id)))}))
            if updated is None:
                return Reply.error(f"Your approval of KafkaRebalance {name} could not be recorded (the card's record "
                                   "kept changing): nothing was changed; press again.")
            counted = approvals_for(updated, rebalance)
            missing = approvals_missing(cluster.policy, counted)
            if missing:
                await self._record(cid, lambda c: c.model_copy(update={
                    "presses": (*c.presses, Press(by=actor.id, action=action, at=now, outcome="counted"))}))
                return Reply(text=f"Approval {len(counted)} of {cluster.policy.approvals_required} recorded for "
                                  f"KafkaRebalance {name}; {missing} more approver(s) needed before the bot "
                                  f"sets {REBALANCE_ANNOTATION}=approve.")
        try:
            await self._rebalances.annotate(cluster.ref, card.name, action, expected_state=shown,
                                            expected_uid=card.uid)
        except RebalanceMoved as exc:
            await self._audit_refusal(cid, actor, action, "moved")
            return Reply.error(f"{exc} Nothing was changed; use the updated card.")
        except RebalanceGone:
            return Reply.error(f"KafkaRebalance {name} was deleted (or replaced by a new one): nothing was changed.")
        log.info("%s set %s=%s on %s", actor.id, REBALANCE_ANNOTATION, action.value, cid)
        await self._record(cid, lambda c: c.model_copy(update={
            "presses": (*c.presses, Press(by=actor.id, action=action, at=now, outcome="set"))}))
        return Reply(text=f"Set {REBALANCE_ANNOTATION}={action.value} on KafkaRebalance {name}: the operator acts "
                          f"on it at its next reconciliation, and the card follows.")

    async def redraw(self, cid: str) -> None:
        """Show card ``cid`` as its resource is now (after a press, so the next press is on the right
        buttons); a failure is logged and the next sync draws it."""
        try:
            loaded = await self._store.load(cid)
            cluster = self.clusters.get(loaded[0].cluster) if loaded is not None else None
            if loaded is None or cluster is None:
                return
            rebalance = await self._rebalances.get_rebalance(cluster.ref, loaded[0].name)
            if rebalance is None or rebalance.uid != loaded[0].uid:
                await self._close(cluster, loaded[0])
            else:
                await self._show(cluster, loaded[0], rebalance)
        except Exception as exc:
            log.warning("could not redraw rebalance card %s: %s: %s", cid, type(exc).__name__, exc)

    async def _audit_refusal(self, cid: str, actor: Actor, action: RebalanceAction, code: str) -> None:
        """A refused press is kept in the card's record (not shown on the card) and logged."""
        log.info("refused %s on %s by %s: %s", action.value, cid, actor.id, code)
        now = self._clock.now()
        await self._record(cid, lambda c: c.model_copy(update={"refused": (*c.refused, Press(
            by=actor.id, action=action, at=now, outcome=code))[-MAX_REFUSALS:]}))
