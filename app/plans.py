"""The plans a business can be on, defined in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price: str
    two_way_texting: bool
    monthly_texts: int | None  # None: unlimited texts
    summary: str

    @property
    def unlimited(self) -> bool:
        return self.monthly_texts is None


PLANS: dict[str, Plan] = {
    plan.key: plan
    for plan in (
        Plan(
            "starter",
            "Starter",
            "$19/month",
            two_way_texting=False,
            monthly_texts=100,
            summary="Booking confirmations and reminders from a shared number, 100 texts a month.",
        ),
        Plan(
            "growth",
            "Growth",
            "$49/month",
            two_way_texting=True,
            monthly_texts=500,
            summary="Two-way texting on your own number, 500 texts a month.",
        ),
        Plan(
            "unlimited",
            "Unlimited",
            "$99/month",
            two_way_texting=True,
            monthly_texts=None,
            summary="Two-way texting on your own number, unlimited texts.",
        ),
    )
}

DEFAULT_PLAN = "growth"


def get_plan(key: str) -> Plan:
    """The plan with this key; unknown keys are a programming error."""
    return PLANS[key]


def upgrade_for_two_way_texting() -> Plan:
    """The cheapest plan that includes two-way texting (for upgrade hints)."""
    return next(plan for plan in PLANS.values() if plan.two_way_texting)
