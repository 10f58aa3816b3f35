"""Which Kafka versions an upgrade may target, pure: the STRIMZI_KAFKA_IMAGES parser, the operator
version read from its image tag, the shipped table of releases, and the order in which the clusters
file, the operator's Deployment and the table are believed, with what each refusal says it judged by."""

from __future__ import annotations

import pytest

from runbooks.catalogue.upgrade import UpgradeParams, plan_upgrade
from runbooks.engine.models import PlanRefused
from runbooks.rules.strimzi_releases import (
    STRIMZI_RELEASES,
    VersionsSource,
    operator_version_from_image,
    parse_kafka_images,
    release_key,
    resolve_supported,
)
from runbooks.rules.versions import ClusterMode, VersionError, parse_version
from tests.runbooks.test_change_plans import brokers, kraft

pytestmark = pytest.mark.timeout(10)

WHERE = "kafka/strimzi-cluster-operator"
IMAGES_049 = ("4.0.0=quay.io/strimzi/kafka:0.49.0-kafka-4.0.0\n4.0.1=quay.io/strimzi/kafka:0.49.0-kafka-4.0.1\n"
              "4.1.0=quay.io/strimzi/kafka:0.49.0-kafka-4.1.0\n4.1.1=quay.io/strimzi/kafka:0.49.0-kafka-4.1.1\n")


def test_kafka_images_newline_or_comma_separated_give_the_versions_oldest_first() -> None:
    assert parse_kafka_images(IMAGES_049) == ("4.0.0", "4.0.1", "4.1.0", "4.1.1")
    assert parse_kafka_images(" 4.1.0=img:a , 4.0.10=img:b,4.0.9=img:c,, ") == ("4.0.9", "4.0.10", "4.1.0")
    assert parse_kafka_images("4.2.2=registry:5000/strimzi/kafka:1.2.0-kafka-4.2.2") == ("4.2.2",)


@pytest.mark.parametrize(("value", "said"), [
    ("", "names no <version>=<image> pair"),
    ("4.2.2", "'4.2.2' is not <version>=<image>"),
    ("4.2.2=", "'4.2.2=' is not <version>=<image>"),
    ("latest=quay.io/strimzi/kafka:latest", "'latest' in 'latest=quay.io/strimzi/kafka:latest' is not a Kafka"),
    ("4.2=img", "'4.2' in '4.2=img' is not a Kafka version like 4.3.1"),
])
def test_a_kafka_images_value_that_is_not_version_image_pairs_is_refused_naming_the_entry(value: str,
                                                                                      said: str) -> None:
    with pytest.raises(VersionError) as caught:
        parse_kafka_images(value)
    assert said in str(caught.value)


@pytest.mark.parametrize(("image", "version"), [
    ("quay.io/strimzi/operator:0.49.0", "0.49.0"),
    ("quay.io/strimzi/operator:1.2.0-rc1", "1.2.0"),
    ("registry.local:5000/strimzi/operator:0.45.1", "0.45.1"),
    ("registry.local:5000/strimzi/operator", None),
    ("quay.io/strimzi/operator:latest", None),
    ("quay.io/strimzi/operator@sha256:03c1eab418b7", None),
    ("quay.io/strimzi/operator:0.49.0@sha256:03c1eab418b7", "0.49.0"),
    ("", None),
])
def test_the_operator_version_is_its_image_tag(image: str, version: str | None) -> None:
    assert operator_version_from_image(image) == version


def test_the_table_holds_zookeeper_0_45_then_kraft_only_releases_through_1_2() -> None:
    """Every list parses, is sorted and unique; 0.45 is the ZooKeeper releases' 3.8/3.9, 1.2 the 4.2/4.3
    lines; a patch release with its own list is found exactly, any other by its minor line."""
    for release, versions in STRIMZI_RELEASES.items():
        assert list(versions) == sorted(set(versions), key=parse_version), release
    assert STRIMZI_RELEASES["0.45"] == ("3.8.0", "3.8.1", "3.9.0")
    assert STRIMZI_RELEASES["0.49"] == ("4.0.0", "4.0.1", "4.1.0", "4.1.1")
    assert STRIMZI_RELEASES["1.2"] == ("4.2.0", "4.2.1", "4.2.2", "4.3.0", "4.3.1")
    assert (release_key("0.45.1"), release_key("0.45.2"), release_key("0.49.1"), release_key("1.2.0")) == \
        ("0.45.1", "0.45", "0.49", "1.2")
    assert release_key("0.51.0") is None and release_key("1.3.0") is None and release_key("main") is None


def test_the_clusters_file_override_beats_the_deployment() -> None:
    got = resolve_supported(mode=ClusterMode.KRAFT, override=("4.1.1", "4.2.0"), deployment=WHERE,
                            operator_image="quay.io/strimzi/operator:0.49.0", kafka_images=IMAGES_049)
    assert (got.source, got.versions) == (VersionsSource.CLUSTERS_FILE, ("4.1.1", "4.2.0"))
    assert got.refusal("4.3.1") == ("Kafka 4.3.1 is not supported on this cluster (from the clusters file: "
                                    "supported_kafka_versions): supported 4.1.1, 4.2.0")


def test_the_deployment_list_is_believed_over_the_table_and_the_status() -> None:
    got = resolve_supported(mode=ClusterMode.KRAFT, deployment=WHERE, operator_image="quay.io/strimzi/operator:0.49.0",
                            kafka_images=IMAGES_049, status_operator_version="1.2.0")
    assert (got.source, got.versions, got.operator_version) == (
        VersionsSource.DEPLOYMENT, ("4.0.0", "4.0.1", "4.1.0", "4.1.1"), "0.49.0")
    assert got.refusal("4.4.0") == ("Kafka 4.4.0 is not supported by the Strimzi operator 0.49.0 running this "
                                    "cluster (from its Deployment kafka/strimzi-cluster-operator): supported "
                                    "4.0.0, 4.0.1, 4.1.0, 4.1.1")


def test_unreadable_deployment_falls_back_to_the_table_by_the_operator_version() -> None:
    forbidden = "the bot may not read the operator Deployment kafka/strimzi-cluster-operator: HTTP 403 Forbidden"
    got = resolve_supported(mode=ClusterMode.KRAFT, deployment=WHERE, unread=forbidden,
                            status_operator_version="0.49.0")
    assert (got.source, got.release, got.versions) == (VersionsSource.TABLE, "0.49", STRIMZI_RELEASES["0.49"])
    assert got.refusal("4.3.1") == (f"Kafka 4.3.1 is not supported by the Strimzi operator 0.49.0 running this "
                                    f"cluster (Strimzi 0.49's list: {forbidden}): supported 4.0.0, 4.0.1, 4.1.0, "
                                    "4.1.1")


@pytest.mark.parametrize(("images", "unread"), [
    (None, "its Deployment kafka/strimzi-cluster-operator sets no STRIMZI_KAFKA_IMAGES"),
    ("4.1=img", "the STRIMZI_KAFKA_IMAGES of its Deployment kafka/strimzi-cluster-operator cannot be read: '4.1' "
                "in '4.1=img' is not a Kafka version"),
])
def test_a_deployment_without_a_readable_list_falls_back_to_the_table_by_its_image(images: str | None,
                                                                                 unread: str) -> None:
    got = resolve_supported(mode=ClusterMode.KRAFT, deployment=WHERE, operator_image="quay.io/strimzi/operator:0.48.0",
                            kafka_images=images)
    assert (got.source, got.release, got.versions) == (VersionsSource.TABLE, "0.48", ("4.0.0", "4.1.0"))
    assert unread in got.unread


def test_an_unknown_operator_version_falls_back_to_the_newest_release_or_the_last_with_zookeeper() -> None:
    unknown = resolve_supported(mode=ClusterMode.KRAFT, deployment=WHERE, unread="HTTP 403",
                                status_operator_version="1.3.0")
    assert (unknown.source, unknown.release) == (VersionsSource.NEWEST, "1.2")
    assert unknown.refusal("4.4.0") == ("Kafka 4.4.0 is not supported by Strimzi 1.2 (Strimzi 1.2's list, as the "
                                        "bot has no list for Strimzi 1.3.0: HTTP 403): supported 4.2.0, 4.2.1, "
                                        "4.2.2, 4.3.0, 4.3.1")
    legacy = resolve_supported(mode=ClusterMode.ZOOKEEPER, deployment=WHERE, unread="HTTP 404")
    assert (legacy.release, legacy.versions) == ("0.45", ("3.8.0", "3.8.1", "3.9.0"))
    assert "as the operator's version is unknown: HTTP 404" in legacy.refusal("4.0.0")


def test_a_version_the_operator_supports_but_strimzi_1_2_does_not_is_planned() -> None:
    """On a 4.0.1 cluster run by Strimzi 0.49, 4.1.1 is planned (pin, roll, raise to 4.1-IV1); 4.3.1,
    which Strimzi 1.2 supports, is refused naming the operator's own list."""
    on_049 = resolve_supported(mode=ClusterMode.KRAFT, deployment=WHERE,
                               operator_image="quay.io/strimzi/operator:0.49.0", kafka_images=IMAGES_049)
    world = kraft(kafka_version="4.0.1", metadata_version="4.0-IV3", brokers=brokers("4.0.1"), supported=on_049)
    steps = plan_upgrade(UpgradeParams(version="4.1.1"), world)
    assert [s.id for s in steps][:3] == ["preflight", "pin-metadata", "roll-version"]
    assert steps[-2].title == "Raise metadataVersion 4.0-IV3 -> 4.1-IV1 (no roll)"
    with pytest.raises(PlanRefused) as caught:
        plan_upgrade(UpgradeParams(version="4.3.1"), world)
    assert "not supported by the Strimzi operator 0.49.0 running this cluster (from its Deployment " \
           "kafka/strimzi-cluster-operator): supported 4.0.0, 4.0.1, 4.1.0, 4.1.1" in str(caught.value)


def test_a_supported_version_of_a_line_the_bot_has_no_metadata_for_is_refused_saying_so() -> None:
    newer = resolve_supported(mode=ClusterMode.KRAFT, override=("4.3.1", "4.4.0"))
    with pytest.raises(PlanRefused) as caught:
        plan_upgrade(UpgradeParams(version="4.4.0"), kraft(kafka_version="4.3.1", metadata_version="4.3-IV0",
                                                           brokers=brokers("4.3.1"), supported=newer))
    assert "does not know the metadata version of the 4.4 line" in str(caught.value)
