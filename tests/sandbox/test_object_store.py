"""The emulator's in-process interface, ``ObjectStore``, as the simulated Strimzi operator uses it:
private copies to subscribers, finalizers, owner references, and the same refusals as the API."""

from __future__ import annotations

import pytest

from bot.sandbox.kube.store import ApiError, ObjectStore
from tests.sandbox.emulator_helpers import STRIMZI

# In-process interface (the simulated operator's view)


async def test_subscribers_receive_private_copies_of_every_change() -> None:
    """subscribe() yields ADDED/MODIFIED/DELETED for every resource, each a copy of its own."""
    store = ObjectStore()
    first, second = store.subscribe(), store.subscribe()
    store.create("", "configmaps", "ns", {"metadata": {"name": "cm"}})
    store.merge_patch("", "configmaps", "ns", "cm", {"data": {"a": "1"}})
    store.merge_patch("", "configmaps", "ns", "cm", {"data": {"a": "1"}})  # no change: no event
    store.delete("", "configmaps", "ns", "cm")
    store.unsubscribe(second)
    store.create("", "configmaps", "ns", {"metadata": {"name": "later"}})
    events = [first.get_nowait() for _ in range(first.qsize())]
    assert [(event.type, event.object["metadata"]["name"]) for event in events] == [
        ("ADDED", "cm"), ("MODIFIED", "cm"), ("DELETED", "cm"), ("ADDED", "later"),
    ]
    assert second.qsize() == 3
    events[0].object["metadata"]["name"] = "mutated"
    assert second.get_nowait().object["metadata"]["name"] == "cm"


async def test_finalizers_hold_deletion_until_removed() -> None:
    """Deleting an object with finalizers only marks it; removing the last finalizer deletes it."""
    store = ObjectStore()
    store.create(STRIMZI, "kafkatopics", "ns", {"metadata": {"name": "t", "finalizers": ["strimzi.io/topic-operator"]}})
    marked = store.delete(STRIMZI, "kafkatopics", "ns", "t")
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as adding:
        store.merge_patch(STRIMZI, "kafkatopics", "ns", "t", {"metadata": {"finalizers": ["a", "b"]}})
    assert adding.value.status == 422
    store.merge_patch(STRIMZI, "kafkatopics", "ns", "t", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as gone:
        store.get(STRIMZI, "kafkatopics", "ns", "t")
    assert gone.value.status == 404 and gone.value.to_status()["reason"] == "NotFound"


async def test_deleting_an_owner_deletes_its_dependents() -> None:
    """Objects whose every owner is gone are deleted with it, as the garbage collector would."""
    store = ObjectStore()
    podset = store.create("core.strimzi.io", "strimzipodsets", "ns", {"metadata": {"name": "prod-brokers"}})
    owner = {"apiVersion": "core.strimzi.io/v1", "kind": "StrimziPodSet", "name": "prod-brokers",
             "uid": podset["metadata"]["uid"]}
    store.create("", "pods", "ns", {"metadata": {"name": "prod-brokers-0", "ownerReferences": [owner]}})
    store.create("", "pods", "ns", {"metadata": {"name": "unowned"}})
    store.delete("core.strimzi.io", "strimzipodsets", "ns", "prod-brokers")
    assert [pod["metadata"]["name"] for pod in store.list("", "pods", "ns")[0]] == ["unowned"]


async def test_store_refuses_what_the_api_refuses() -> None:
    """In-process writes get the HTTP layer's errors: bad names, non-JSON bodies, a missing namespace."""
    store = ObjectStore()
    refusals = [
        lambda: store.create("", "pods", "ns", {"metadata": {"name": "Not_A_Name"}}),
        lambda: store.create("", "pods", "ns", {"metadata": {"name": "p"}, "spec": {"when": object()}}),
        lambda: store.create("", "pods", None, {"metadata": {"name": "p"}}),
        lambda: store.get("", "widgets", "ns", "w"),
        lambda: store.json_patch("", "pods", "ns", "missing", []),
    ]
    statuses = []
    for refusal in refusals:
        with pytest.raises(ApiError) as error:
            refusal()
        statuses.append(error.value.status)
    assert statuses == [422, 400, 400, 404, 404]
    generated = store.create("", "pods", "ns", {"metadata": {"generateName": "prod-"}})
    assert generated["metadata"]["name"].startswith("prod-") and len(generated["metadata"]["name"]) == 10
