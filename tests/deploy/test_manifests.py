"""deploy/kubernetes/kafka-chatops.yaml is the chart rendered with its default values, byte for byte
after its header: a chart change without `make deploy-manifests` fails here."""

from __future__ import annotations

import pytest

from tests.deploy.helm_chart import MANIFESTS, NAMESPACE, RELEASE, template_text

pytestmark = pytest.mark.timeout(60)

HEADER = MANIFESTS.parent / "HEADER"


def test_plain_manifests_are_the_default_render() -> None:
    committed = MANIFESTS.read_text()
    assert committed.startswith(HEADER.read_text()), "the header of deploy/kubernetes/kafka-chatops.yaml changed"
    assert committed[len(HEADER.read_text()):] == template_text(), (
        "deploy/kubernetes/kafka-chatops.yaml differs from the chart's default render: run `make deploy-manifests`")


def test_the_header_says_how_it_was_rendered() -> None:
    """The release name and namespace the header tells users are the ones the file was rendered with."""
    header = HEADER.read_text()
    assert f"Release name {RELEASE}" in header and f"`kubectl apply -n {NAMESPACE}" in header
