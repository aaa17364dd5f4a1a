"""The price book: what storage and compute cost per region.

Lines come from the database (budgets.Price, rebuilt by `manage.py prices_refresh` from the AWS Price List
API, see budgets/pricing_api.py) and, for a line the database lacks, from the prices Carrel ships: storage in
budgets/storage_prices.yaml, instance types in workspaces/instance_types.yaml (read by workspaces/sizing.py,
whose `hourly_rate` asks `listed_hourly_rate` first).
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
UNIT_OF_DIMENSION = {"storage": "GB-month", "iops": "IOPS-month", "throughput": "MBps-month", "hour": "hour"}


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


@functools.cache
def _free_units() -> dict[tuple[str, str], Decimal]:
    raw = yaml.safe_load(SHIPPED_PATH.read_text()).get("free_units", {})
    return {
        (variant, dimension): Decimal(str(units)) for variant, dims in raw.items() for dimension, units in dims.items()
    }


def free_units_of(variant: str, dimension: str) -> Decimal:
    """Units a volume type includes at no charge (gp3: 3,000 IOPS, 125 MB/s); the Price List does not say so."""
    return _free_units().get((variant, dimension), Decimal(0))


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


def listed_hourly_rate(region: str, instance_type: str) -> Decimal | None:
    """The price book's on-demand hourly rate for an instance type (one query), None when only the shipped
    catalog (workspaces/instance_types.yaml) knows it."""
    from budgets.models import Price

    return (
        Price.objects.filter(
            region=region, product=Price.Product.COMPUTE, variant=instance_type, dimension=Price.Dimension.HOUR
        )
        .values_list("price", flat=True)
        .first()
    )


@dataclass(frozen=True)
class BookLine:
    """One line of the price book as displayed: `price` USD per `unit`, above `free_units` included ones."""

    region: str
    product: str
    variant: str
    dimension: str
    price: Decimal
    unit: str
    free_units: Decimal
    as_of: date | None  # None: shipped with the code (instance types carry no date)
    source: str  # "shipped" or "aws-price-list"


def book(region: str | None = None) -> list[BookLine]:
    """The current price book (every region, or one): the database's lines over the shipped ones. One query."""
    from budgets.models import Price
    from workspaces import sizing

    lines: dict[tuple[str, str, str, str], BookLine] = {}
    for (line_region, product, variant, dimension), line in _shipped().items():
        unit = UNIT_OF_DIMENSION[dimension]
        key = (line_region, product, variant, dimension)
        lines[key] = BookLine(*key, line.price, unit, line.free_units, line.as_of, line.source)
    for spec in sizing.instance_types().values():
        for line_region, price in spec.on_demand.items():
            key = (line_region, "compute", spec.name, "hour")
            lines[key] = BookLine(*key, price, "hour", Decimal(0), None, "shipped")
    rows = Price.objects.all() if region is None else Price.objects.filter(region=region)
    for row in rows:
        key = (row.region, row.product, row.variant, row.dimension)
        lines[key] = BookLine(
            *key, row.price, UNIT_OF_DIMENSION.get(row.dimension, row.dimension), row.free_units, row.as_of, row.source
        )
    return [lines[key] for key in sorted(lines) if region is None or key[0] == region]


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
