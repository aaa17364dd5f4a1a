"""The price book: what storage costs per region. Instance types keep their table (workspaces/sizing.py).

Lines come from the database (budgets.Price, rebuilt by `manage.py prices_refresh` from the AWS Price List
API) and, for a line the database lacks, from the prices Carrel ships (budgets/storage_prices.yaml).
"""

import functools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import yaml

from platform_site.errors import ValidationFailed

SHIPPED_PATH = Path(__file__).with_name("storage_prices.yaml")
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1")
UNIT_OF_DIMENSION = {"storage": "GB-month", "iops": "IOPS-month", "throughput": "MBps-month"}


@dataclass(frozen=True)
class PriceLine:
    price: Decimal
    free_units: Decimal
    as_of: date
    source: str


@dataclass(frozen=True)
class StorageLine:
    """One billed dimension of a volume: `units` of `unit` at `rate` USD per unit-month."""

    item: str
    units: Decimal
    unit: str
    rate: Decimal

    def as_json(self) -> dict[str, str]:
        return {"item": self.item, "units": str(self.units), "unit": self.unit, "rate": str(self.rate)}


@functools.cache
def _shipped() -> dict[tuple[str, str, str, str], PriceLine]:
    raw = yaml.safe_load(SHIPPED_PATH.read_text())
    as_of = date.fromisoformat(str(raw["as_of"]))
    free = raw.get("free_units", {})
    lines: dict[tuple[str, str, str, str], PriceLine] = {}
    for region, products in raw["regions"].items():
        for product, variants in products.items():
            for variant, dimensions in variants.items():
                for dimension, price in dimensions.items():
                    free_units = Decimal(str(free.get(variant, {}).get(dimension, "0")))
                    lines[(region, product, variant, dimension)] = PriceLine(
                        Decimal(str(price)), free_units, as_of, "shipped"
                    )
    return lines


def shipped_lines() -> dict[tuple[str, str, str, str], PriceLine]:
    return dict(_shipped())


def price_of(region: str, product: str, variant: str, dimension: str) -> PriceLine | None:
    """The price book's line, the database's first; None when nobody knows the price."""
    from budgets.models import Price

    row = (
        Price.objects.filter(region=region, product=product, variant=variant, dimension=dimension)
        .values_list("price", "free_units", "as_of", "source")
        .first()
    )
    if row is not None:
        return PriceLine(*row)
    return _shipped().get((region, product, variant, dimension))


def storage_lines(
    *, region: str, volume_type: str, size_gb: int, iops: int | None = None, throughput: int | None = None
) -> list[StorageLine]:
    """What an EBS volume is billed for each month: its size, and provisioned IOPS/throughput above the
    baseline its type includes."""
    storage = price_of(region, "ebs", volume_type, "storage")
    if storage is None:
        raise ValidationFailed(
            f"No price for {volume_type} volumes in {region}.",
            code="UNSUPPORTED_REGION",
            fields={"storage": [f"Volume type must be one of {', '.join(VOLUME_TYPES)} in a supported region."]},
        )
    lines = [StorageLine(f"{volume_type} storage", Decimal(size_gb), "GB-month", storage.price)]
    for dimension, provisioned in (("iops", iops), ("throughput", throughput)):
        line = price_of(region, "ebs", volume_type, dimension)
        if line is None or not provisioned:
            continue
        billable = Decimal(provisioned) - line.free_units
        if billable > 0:
            lines.append(StorageLine(f"{volume_type} {dimension}", billable, UNIT_OF_DIMENSION[dimension], line.price))
    return lines


def monthly_rate(lines: list[StorageLine]) -> Decimal:
    return sum((line.units * line.rate for line in lines), Decimal(0))
