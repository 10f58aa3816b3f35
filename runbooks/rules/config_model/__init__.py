"""Kafka's own broker config model, per Kafka version, as data (pure).

``kafka-<version>.json`` next to this file is generated from that version's jars by
``make config-model`` (``bot/configmodel``): every key of ``KafkaConfig.configDef()`` with its type,
default, validator and update mode (read-only, per-broker or cluster-wide, from Kafka's
``DynamicBrokerConfig``). Nobody edits them by hand; a test holds them to the jars.

A cluster runs one exact version, and the rules it enforces are that version's. Which model judges
a cluster (``model_for``): its own version's; else another patch release of the same minor line
(a patch release fixes bugs, it does not add or change config keys; the plan says which model it
used); else none, and the change is refused: between minor releases keys appear and validators
change (4.2 to 4.3 added 21 keys, dropped 3 and narrowed a range), and a value judged by the wrong
release's rules is how a broker gets a value it will not start with.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConfigType = Literal["BOOLEAN", "STRING", "INT", "SHORT", "LONG", "DOUBLE", "LIST", "CLASS", "PASSWORD"]
UpdateMode = Literal["read-only", "per-broker", "cluster-wide"]
_FILE = re.compile(r"kafka-(\d+)\.(\d+)\.(\d+)\.json")


class ValidatorSpec(BaseModel):
    """One of Kafka's ``ConfigDef.Validator`` instances, as data. ``text`` is Kafka's own ``toString``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    kind: str  # range, valid_string, case_insensitive_string, valid_list, list_size, non_empty_string,
    #            non_empty_without_control_chars, non_null, composite, custom
    text: str = ""
    min: int | float | None = None
    max: int | float | None = None
    values: tuple[str, ...] = ()
    empty_allowed: bool = True
    null_allowed: bool = False
    # Kafka 3.x's ValidList checks only that each entry is one of ``values`` (an empty list, duplicates
    # pass); 4.0 added the checks of empty lists, duplicates and empty entries.
    entries_only: bool = False
    validators: tuple[ValidatorSpec, ...] = ()
    java_class: str | None = Field(default=None, alias="class")


class KeySpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: ConfigType
    has_default: bool = True
    default: str | None = None  # Kafka's string form (ConfigDef.convertToString); None: no value
    validator: ValidatorSpec | None = None
    update_mode: UpdateMode = "read-only"
    internal: bool = False
    importance: str | None = None

    @property
    def dynamic(self) -> bool:
        """Kafka applies it to running brokers (no restart)."""
        return self.update_mode != "read-only"


class BrokerConfigModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    kafka_version: str
    source: str = ""
    keys: dict[str, KeySpec]


class ModelMissing(Exception):
    """No model may judge this cluster's values: the message says why and what exists."""


def _version(text: str) -> tuple[int, int, int] | None:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


@cache
def available() -> tuple[str, ...]:
    """The Kafka versions with a committed model, oldest first."""
    found = [m for f in resources.files(__name__).iterdir() if (m := _FILE.fullmatch(f.name))]
    ordered = sorted((int(a), int(b), int(c)) for a, b, c in (m.groups() for m in found))
    return tuple(".".join(map(str, v)) for v in ordered)


@cache
def load_model(version: str) -> BrokerConfigModel:
    """The committed model of exactly ``version`` (ModelMissing if there is none)."""
    if version not in available():
        raise ModelMissing(f"no config model for Kafka {version}")
    text = resources.files(__name__).joinpath(f"kafka-{version}.json").read_text(encoding="utf-8")
    return BrokerConfigModel.model_validate_json(text)


def model_for(kafka_version: str | None) -> tuple[BrokerConfigModel, str]:
    """The model that judges a cluster on ``kafka_version``, and a note when it is not that exact
    version's (empty otherwise). ModelMissing when no model may judge it."""
    known = available()
    if kafka_version is None:
        raise ModelMissing("the Kafka resource reports no Kafka version yet, so the rules its brokers apply to "
                           "config values are unknown; try again once the operator has reported it")
    wanted = _version(kafka_version)
    if wanted is None:
        raise ModelMissing(f"the Kafka resource reports version {kafka_version!r}, which is not a release number")
    if kafka_version in known:
        return load_model(kafka_version), ""
    same_line = [v for v in known if (p := _version(v)) is not None and p[:2] == wanted[:2]]
    if same_line:
        lower = [v for v in same_line if (_version(v) or wanted) < wanted]
        chosen = lower[-1] if lower else same_line[0]
        return load_model(chosen), (f"values judged with the config rules of Kafka {chosen}, the nearest release of "
                                    f"the same {wanted[0]}.{wanted[1]} line (no model for {kafka_version})")
    raise ModelMissing(
        f"the bot has no config model for Kafka {kafka_version} (it has {', '.join(known) or 'none'}), and another "
        "release line's rules could pass a value these brokers will not start with; generate one with "
        f"`python -m bot.configmodel --kafka-version {kafka_version}` (after fetching its jars) and commit it")
