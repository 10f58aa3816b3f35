"""The ``alerts:`` block of a cluster in the clusters file, read into ``runbooks.alerting.lifecycle.AlertRules``.

Every key is optional (the defaults are AlertRules'); durations are written like the rest of the
file (``30s``, ``10m``, ``2h``, or a number of seconds)::

    alerts:
      health_poll: 5s          # broker/URP/ISR/quorum poll
      lag_poll: 15s            # consumer lag poll
      throttle_poll: 1m        # replication throttles no run owns (DescribeConfigs)
      update_interval: 30s     # at most one edit of an alert message per this
      during_run_for: 3m       # health conditions must hold this long while a runbook runs
      under_replicated: {for: 0s, cooldown: 10m}
      broker_down: {for: 0s}
      kafka_not_ready: {for: 1m}
      strimzi_restart: {enabled: false}
      unowned_throttles: {for: 5m}
      consumer_lag:
        for: 1m
        max_lag: 100000        # records behind on the worst partition
        max_lag_seconds: 5m    # time behind on the worst partition
        growth: {window: 5m, min_increase: 10000, factor: 3}
        exclude_groups: "console-consumer-.*"
      mirror_poll: 15s         # KafkaMirrorMaker2 status and replication lag
      mirror_failed: {for: 0s} # a FAILED MirrorMaker 2 connector or task
      mirror_lag: {for: 1m, max_records: 10000, max_seconds: 5m}
      mirror_canary: {every: 30s, max_silence: 5m}  # a canary record per mirror; none arrived for this long
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.config.durations import parse_duration
from runbooks.alerting.lifecycle import AlertRules, ConditionRule, LagRule, MirrorCanaryRule, MirrorLagRule

Duration = str | int | float


def _seconds(value: Duration) -> float:
    return parse_duration(value)


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    for_: Duration | None = Field(default=None, alias="for")
    cooldown: Duration | None = None

    @field_validator("for_", "cooldown")
    @classmethod
    def _duration(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            _seconds(value)
        return value

    def overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {"enabled": self.enabled}
        if self.for_ is not None:
            values["for_s"] = _seconds(self.for_)
        if self.cooldown is not None:
            values["cooldown_s"] = _seconds(self.cooldown)
        return values

    def rule(self, base: ConditionRule) -> ConditionRule:
        return base.model_copy(update=self.overrides())


class GrowthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: Duration | None = None
    min_increase: int | None = Field(default=None, ge=1)
    factor: float | None = Field(default=None, ge=1)
    enabled: bool = True


class LagRuleConfig(RuleConfig):
    max_lag: int | None = Field(default=None, ge=0)
    max_lag_seconds: Duration | None = None
    growth: GrowthConfig | None = None
    include_groups: str | None = None
    exclude_groups: str | None = None

    def lag_rule(self) -> LagRule:
        values = self.overrides()
        if self.max_lag is not None:
            values["max_lag"] = self.max_lag
        if self.max_lag_seconds is not None:
            values["max_lag_seconds"] = _seconds(self.max_lag_seconds)
        if self.growth is not None:
            if not self.growth.enabled:
                values["growth_min_increase"] = None
            if self.growth.window is not None:
                values["growth_window_s"] = _seconds(self.growth.window)
            if self.growth.min_increase is not None and self.growth.enabled:
                values["growth_min_increase"] = self.growth.min_increase
            if self.growth.factor is not None:
                values["growth_factor"] = self.growth.factor
        values["include_groups"] = self.include_groups
        values["exclude_groups"] = self.exclude_groups
        return LagRule.model_validate({**LagRule().model_dump(), **values})


class MirrorLagRuleConfig(RuleConfig):
    """``mirror_lag``: records behind (summed over a mirror's partitions) and/or the age of the oldest
    record not yet copied; ``null`` turns one threshold off, not both."""

    max_records: int | None = Field(default=None, ge=1)
    max_seconds: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_threshold_left(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("enabled", True) is not False and "max_records" in data and (
                "max_seconds" in data) and data["max_records"] is None and data["max_seconds"] is None:
            raise ValueError("mirror_lag needs max_records (records behind) or max_seconds (a duration such as 5m), "
                             "or enabled: false to turn the alert off")
        return data

    @field_validator("max_seconds")
    @classmethod
    def _seconds_valid(cls, value: Duration | None) -> Duration | None:
        if value is not None and _seconds(value) <= 0:
            raise ValueError(f"max_seconds must be a duration above 0 (e.g. 5m), not {value!r}")
        return value

    def mirror_rule(self) -> MirrorLagRule:
        values = self.overrides()
        fields = self.model_fields_set
        if "max_records" in fields:
            values["max_records"] = self.max_records
        if "max_seconds" in fields:
            values["max_seconds"] = None if self.max_seconds is None else _seconds(self.max_seconds)
        return MirrorLagRule.model_validate({**MirrorLagRule().model_dump(), **values})


class MirrorCanaryRuleConfig(RuleConfig):
    """``mirror_canary``: how often the monitor sends a canary record through each mirror (``every``)
    and how long none may fail to arrive on the target before the alert (``max_silence``)."""

    every: Duration | None = None
    max_silence: Duration | None = None

    @field_validator("every", "max_silence")
    @classmethod
    def _positive(cls, value: Duration | None) -> Duration | None:
        if value is not None and _seconds(value) <= 0:
            raise ValueError(f"must be a duration above 0 (e.g. 30s or 5m), not {value!r}")
        return value

    def canary_rule(self) -> MirrorCanaryRule:
        values = self.overrides()
        if self.every is not None:
            values["every_s"] = _seconds(self.every)
        if self.max_silence is not None:
            values["max_silence_s"] = _seconds(self.max_silence)
        rule = MirrorCanaryRule.model_validate({**MirrorCanaryRule().model_dump(), **values})
        if rule.max_silence_s <= rule.every_s:
            raise ValueError(f"mirror_canary max_silence ({rule.max_silence_s:g} s) must be longer than every "
                             f"({rule.every_s:g} s): a canary sent every {rule.every_s:g} s cannot arrive more "
                             "often than that")
        return rule


_CONDITIONS = ("broker_down", "under_replicated", "under_min_isr", "offline_partitions", "quorum", "kafka_unreachable",
               "kafka_not_ready", "kafka_warning", "pod_crashing", "strimzi_restart", "unowned_throttles",
               "mirror_failed")


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    health_poll: Duration | None = None
    lag_poll: Duration | None = None
    throttle_poll: Duration | None = None
    update_interval: Duration | None = None
    during_run_for: Duration | None = None
    broker_down: RuleConfig | None = None
    under_replicated: RuleConfig | None = None
    under_min_isr: RuleConfig | None = None
    offline_partitions: RuleConfig | None = None
    quorum: RuleConfig | None = None
    kafka_unreachable: RuleConfig | None = None
    kafka_not_ready: RuleConfig | None = None
    kafka_warning: RuleConfig | None = None
    pod_crashing: RuleConfig | None = None
    strimzi_restart: RuleConfig | None = None
    unowned_throttles: RuleConfig | None = None
    consumer_lag: LagRuleConfig | None = None
    mirror_poll: Duration | None = None
    mirror_failed: RuleConfig | None = None
    mirror_lag: MirrorLagRuleConfig | None = None
    mirror_canary: MirrorCanaryRuleConfig | None = None

    @field_validator("health_poll", "lag_poll", "throttle_poll", "update_interval", "during_run_for", "mirror_poll")
    @classmethod
    def _duration(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            _seconds(value)
        return value

    @model_validator(mode="after")
    def _valid_rules(self) -> AlertsConfig:
        self.rules()  # e.g. a zero poll interval: refused when the file is read, not when the bot polls
        return self

    def rules(self) -> AlertRules:
        base = AlertRules()
        values: dict[str, Any] = {}
        for field, target in (("health_poll", "health_poll_s"), ("lag_poll", "lag_poll_s"),
                              ("throttle_poll", "throttle_poll_s"), ("mirror_poll", "mirror_poll_s"),
                              ("update_interval", "update_interval_s"), ("during_run_for", "during_run_for_s")):
            raw = getattr(self, field)
            if raw is not None:
                values[target] = _seconds(raw)
        for name in _CONDITIONS:
            config: RuleConfig | None = getattr(self, name)
            if config is not None:
                values[name] = config.rule(getattr(base, name))
        if self.consumer_lag is not None:
            values["consumer_lag"] = self.consumer_lag.lag_rule()
        if self.mirror_lag is not None:
            values["mirror_lag"] = self.mirror_lag.mirror_rule()
        if self.mirror_canary is not None:
            values["mirror_canary"] = self.mirror_canary.canary_rule()
        return AlertRules.model_validate({**base.model_dump(), **{k: v.model_dump() if isinstance(v, BaseModel)
                                                                 else v for k, v in values.items()}})
