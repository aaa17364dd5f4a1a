"""Reading the AWS Price List (Query) API into the price book (budgets.Price).

Three steps, each usable alone:

- `fetch_price_list(regions)` asks the Price List API (`pricing:GetProducts`, served from us-east-1 whatever
  region is priced) for the products Carrel bills, following NextToken; `read_price_list_dir(path)` reads
  recorded GetProducts responses instead (tests, air-gapped installs).
- `parse_price_list(documents)` is a pure function: each document is one `PriceList` entry, a JSON STRING
  holding `product` (productFamily, attributes) and `terms.OnDemand.<sku>.<offerTermCode>.priceDimensions`.
  It returns the price book lines found, the products it ignored, and the problems that must stop a refresh.
- `refresh(parsed, regions=, as_of=)` writes the lines in one transaction and says what changed. A line the
  price list did not give is kept as it was (never deleted): the book only ever gains better prices.

Prices are parsed from their strings as Decimal, never float.
"""

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction
from django.utils import timezone

from budgets import prices
from budgets.models import Price
from workspaces import sizing

SOURCE = "aws-price-list"
# The Price List Query API is served from us-east-1 (also eu-central-1 and ap-south-1), whatever the region priced.
PRICING_API_REGION = "us-east-1"
PAGE_SIZE = 100  # GetProducts' maximum
PRICE_QUANTUM = Decimal("1E-10")  # budgets.Price.price has 10 decimal places
MIB_PER_GIB = Decimal(1024)

EBS_VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1")
IOPS_VOLUME_TYPES = ("gp3", "io1", "io2")
THROUGHPUT_VOLUME_TYPES = ("gp3",)

# The unit AWS prices each dimension in. Throughput is published per GiBps-month ($40.96 = $0.04 per MiBps-month
# in us-east-1); the book prices it per MB/s-month, as EC2 provisions it, so GiBps prices are divided by 1024.
EXPECTED_UNITS: Mapping[str, frozenset[str]] = {
    "hour": frozenset({"hrs"}),
    "storage": frozenset({"gb-mo"}),
    "iops": frozenset({"iops-mo"}),
    "throughput": frozenset({"gibps-mo", "mibps-mo"}),
}

Key = tuple[str, str, str, str]  # (region, product, variant, dimension)


class PriceListError(Exception):
    """The price list could not be read: nothing was written."""


@dataclass(frozen=True)
class ListedPrice:
    """One price book line read from the price list."""

    region: str
    product: str
    variant: str
    dimension: str
    price: Decimal
    unit: str  # AWS's unit, before any conversion
    sku: str
    note: str = ""

    @property
    def key(self) -> Key:
        return (self.region, self.product, self.variant, self.dimension)


@dataclass
class ParsedPriceList:
    lines: dict[Key, ListedPrice] = field(default_factory=dict)
    ignored: int = 0  # products read that the book does not price (other OS, tenancy, services...)
    notes: list[str] = field(default_factory=list)  # worth saying, not worth stopping for
    problems: list[str] = field(default_factory=list)  # a refresh with any of these writes nothing


# --- Classifying one product ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    product: str
    variant: str
    dimension: str
    note: str = ""


def _compute_line(attributes: Mapping[str, str]) -> _Line | None:
    """Linux, shared tenancy, no pre-installed software, on-demand capacity actually used: what a workspace is."""
    wanted = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
    if any(attributes.get(name) != value for name, value in wanted.items()):
        return None
    # Present on newer price lists; "RunInstances" alone is plain Linux/UNIX (":0002" is Windows, ...).
    if attributes.get("operation", "RunInstances") != "RunInstances":
        return None
    if attributes.get("marketoption", "OnDemand") != "OnDemand":
        return None
    instance_type = attributes.get("instanceType")
    return _Line("compute", instance_type, "hour") if instance_type else None


def _ec2_line(family: str, attributes: Mapping[str, str]) -> _Line | str | None:
    """The book line an AmazonEC2 product prices; a string says why a relevant product is deliberately skipped."""
    usagetype = attributes.get("usagetype", "")
    volume = attributes.get("volumeApiName", "")
    if family == "Compute Instance":
        return _compute_line(attributes)
    if family == "Storage" and volume in EBS_VOLUME_TYPES and "EBS:VolumeUsage" in usagetype:
        return _Line("ebs", volume, "storage")
    if family == "System Operation" and volume in IOPS_VOLUME_TYPES and "EBS:VolumeP-IOPS" in usagetype:
        group = attributes.get("group", "")
        if group != "EBS IOPS" or usagetype.rsplit(".", 1)[-1].startswith("tier"):
            # io2 IOPS are tiered per volume, each tier its own SKU ("EBS IOPS Tier 2": 32,001-64,000 IOPS,
            # "Tier 3": above). Workspaces provision far less than 32,000 IOPS: the book keeps the first tier.
            return f"{volume} {group or usagetype}: only the first io2 IOPS tier (up to 32,000 IOPS) is kept"
        note = "first tier (up to 32,000 IOPS)" if volume == "io2" else ""
        return _Line("ebs", volume, "iops", note)
    if (
        family in ("Provisioned Throughput", "System Operation")
        and volume in THROUGHPUT_VOLUME_TYPES
        and "EBS:VolumeP-Throughput" in usagetype
    ):
        return _Line("ebs", volume, "throughput")
    if family == "Storage Snapshot" and usagetype.endswith("EBS:SnapshotUsage"):
        return _Line("snapshot", "standard", "storage")
    return None


def _efs_line(family: str, attributes: Mapping[str, str]) -> _Line | None:
    # "General Purpose" is EFS Standard (regional); One Zone, Infrequent Access and Archive have their own classes.
    if family == "Storage" and attributes.get("storageClass") == "General Purpose":
        return _Line("efs", "standard", "storage")
    return None


# --- Reading the terms ---------------------------------------------------------------------------


def _decimal(text: Any) -> Decimal:
    if not isinstance(text, str):  # JSON numbers would have gone through float: refuse them
        raise InvalidOperation(f"not a string: {text!r}")
    value = Decimal(text)
    if not value.is_finite() or value < 0:
        raise InvalidOperation(f"not a price: {text!r}")
    return value


def _on_demand_dimension(terms: Any) -> tuple[dict[str, Any], bool]:
    """The on-demand price dimension starting at 0, and whether there were further tiers (beginRange > 0)."""
    dimensions = [
        dimension
        for term in ((terms or {}).get("OnDemand") or {}).values()
        for dimension in (term.get("priceDimensions") or {}).values()
    ]
    if not dimensions:
        raise ValueError("no on-demand price")
    first = [d for d in dimensions if _decimal(str(d.get("beginRange", "0"))) == 0]
    if len(first) != 1:
        raise ValueError(f"{len(first)} on-demand prices start at 0")
    return first[0], len(dimensions) > 1


def _region_of(attributes: Mapping[str, str]) -> str | None:
    if attributes.get("locationType", "AWS Region") != "AWS Region":
        return None  # Local Zones, Wavelength, Outposts: priced apart, never where Carrel launches
    return attributes.get("regionCode") or None


def _load(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, str):
        # parse_float: a price that slipped in as a JSON number stays exact (and is then refused as not a string)
        loaded: Mapping[str, Any] = json.loads(document, parse_float=Decimal)
        return loaded
    return document


def parse_price_list(
    documents: Iterable[str | Mapping[str, Any]],
    *,
    regions: Collection[str] | None = None,
    instance_types: Collection[str] | None = None,
) -> ParsedPriceList:
    """The price book lines in `documents` (GetProducts `PriceList` entries), for `regions` and, for compute,
    `instance_types` (None: all). Pure: no database, no network."""
    parsed = ParsedPriceList()
    for document in documents:
        try:
            item = _load(document)
            product = item["product"]
            attributes = product.get("attributes") or {}
            family = product.get("productFamily") or attributes.get("productFamily", "")
            service = item.get("serviceCode") or attributes.get("servicecode", "")
            sku = product.get("sku", "?")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            parsed.problems.append(f"unreadable price list entry: {error}")
            continue
        region = _region_of(attributes)
        if region is None or (regions is not None and region not in regions):
            parsed.ignored += 1
            continue
        line: _Line | str | None
        if service == "AmazonEC2":
            line = _ec2_line(family, attributes)
        elif service == "AmazonEFS":
            line = _efs_line(family, attributes)
        else:
            line = None
        if isinstance(line, str):
            parsed.notes.append(f"{region} {line} (sku {sku})")
            parsed.ignored += 1
            continue
        if line is None or (
            line.product == "compute" and instance_types is not None and line.variant not in instance_types
        ):
            parsed.ignored += 1
            continue
        where = f"{region} {line.product} {line.variant} {line.dimension} (sku {sku})"
        try:
            dimension, tiered = _on_demand_dimension(item.get("terms"))
            unit = str(dimension.get("unit", ""))
            price = _decimal((dimension.get("pricePerUnit") or {}).get("USD"))
        except (ValueError, InvalidOperation, AttributeError, TypeError) as error:
            parsed.problems.append(f"{where}: {error}")
            continue
        if unit.lower() not in EXPECTED_UNITS[line.dimension]:
            parsed.problems.append(f"{where}: priced per {unit!r}, expected {sorted(EXPECTED_UNITS[line.dimension])}")
            continue
        if unit.lower() == "gibps-mo":
            price /= MIB_PER_GIB
        if price == 0:
            # Carrel bills nothing AWS gives away; a zero here means a SKU was matched by mistake.
            parsed.problems.append(f"{where}: price is 0")
            continue
        quantized = price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        note = "; ".join(filter(None, [line.note, "first tier kept" if tiered and not line.note else ""]))
        listed = ListedPrice(region, line.product, line.variant, line.dimension, quantized, unit, sku, note)
        known = parsed.lines.get(listed.key)
        if known is not None and known.price != listed.price:
            parsed.problems.append(
                f"{where}: {listed.price} disagrees with {known.price} (sku {known.sku}) for the same line"
            )
            continue
        parsed.lines.setdefault(listed.key, listed)
    return parsed


# --- Where the documents come from ---------------------------------------------------------------


def _term(field_name: str, value: str) -> dict[str, str]:
    return {"Type": "TERM_MATCH", "Field": field_name, "Value": value}


def queries(region: str) -> list[tuple[str, list[dict[str, str]]]]:
    """(ServiceCode, Filters) of the GetProducts calls that price one region."""
    here = _term("regionCode", region)
    compute = [
        here,
        _term("productFamily", "Compute Instance"),
        _term("operatingSystem", "Linux"),
        _term("tenancy", "Shared"),
        _term("preInstalledSw", "NA"),
        _term("capacitystatus", "Used"),
    ]
    ebs = [
        ("AmazonEC2", [here, _term("productFamily", family)])
        for family in ("Storage", "System Operation", "Provisioned Throughput", "Storage Snapshot")
    ]
    efs = [here, _term("productFamily", "Storage"), _term("storageClass", "General Purpose")]
    return [("AmazonEC2", compute), *ebs, ("AmazonEFS", efs)]


def pricing_client() -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=60)
    return boto3.client("pricing", region_name=PRICING_API_REGION, config=config)


def fetch_price_list(regions: Iterable[str], *, client: Any = None) -> Iterator[str]:
    """Every PriceList entry (a JSON string) the queries for `regions` return, page after page."""
    client = client or pricing_client()
    for region in regions:
        for service_code, filters in queries(region):
            token = ""
            while True:
                params: dict[str, Any] = {
                    "ServiceCode": service_code,
                    "Filters": filters,
                    "FormatVersion": "aws_v1",
                    "MaxResults": PAGE_SIZE,
                }
                if token:
                    params["NextToken"] = token
                try:
                    page = client.get_products(**params)
                except (ClientError, BotoCoreError) as error:
                    raise PriceListError(f"GetProducts {service_code} {region}: {error}") from error
                yield from page.get("PriceList", [])
                token = page.get("NextToken") or ""
                if not token:
                    break


def read_price_list_dir(path: str | Path) -> Iterator[str]:
    """The PriceList entries of recorded GetProducts responses: every *.json file in `path`, in name order."""
    directory = Path(path)
    files = sorted(directory.glob("*.json"))
    if not files:
        raise PriceListError(f"no *.json GetProducts responses in {directory}")
    for file in files:
        try:
            page = json.loads(file.read_text())
            entries = page["PriceList"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise PriceListError(f"{file}: not a GetProducts response ({error})") from error
        yield from entries


# --- Writing the book ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    key: Key
    old: Decimal | None  # None: the line is new to the book
    old_source: str
    new: Decimal

    def __str__(self) -> str:
        name = " ".join(self.key)
        if self.old is None:
            return f"{name}: (none) → {self.new.normalize():f}"
        return f"{name}: {self.old.normalize():f} ({self.old_source}) → {self.new.normalize():f}"


@dataclass
class RefreshReport:
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    kept: list[Key] = field(default_factory=list)  # expected but absent from the price list: left as they were


def expected_keys(regions: Iterable[str]) -> set[Key]:
    """The lines the book should have for `regions`: the shipped storage lines and every catalog type's hour."""
    wanted = set(regions)
    keys = {key for key in prices.shipped_lines() if key[0] in wanted}
    for spec in sizing.instance_types().values():
        keys |= {(region, "compute", spec.name, "hour") for region in spec.on_demand if region in wanted}
    return keys


def refresh(parsed: ParsedPriceList, *, regions: Collection[str], as_of: date) -> RefreshReport:
    """Write `parsed` into the price book in one transaction; lines it lacks stay as they are."""
    if parsed.problems:
        raise PriceListError("; ".join(parsed.problems))
    report = RefreshReport()
    lines = {key: line for key, line in parsed.lines.items() if key[0] in regions}
    shipped = prices.shipped_lines()
    catalog = sizing.instance_types()
    with transaction.atomic():
        existing = {
            (row.region, row.product, row.variant, row.dimension): row
            for row in Price.objects.select_for_update().filter(region__in=list(regions))
        }
        new_rows, updated_rows = [], []
        for key, line in sorted(lines.items()):
            free_units = prices.free_units_of(line.variant, line.dimension)
            row = existing.get(key)
            if row is None:
                old, old_source = _shipped_price(key, shipped, catalog)
                new_rows.append(
                    Price(
                        region=line.region,
                        product=line.product,
                        variant=line.variant,
                        dimension=line.dimension,
                        price=line.price,
                        free_units=free_units,
                        as_of=as_of,
                        source=SOURCE,
                    )
                )
            else:
                old, old_source = row.price, row.source
                row.price, row.free_units, row.as_of, row.source = line.price, free_units, as_of, SOURCE
                updated_rows.append(row)
            if old is not None and old == line.price:
                report.unchanged += 1
            else:
                report.changed.append(Change(key, old, old_source, line.price))
        Price.objects.bulk_create(new_rows)
        # updated_at is auto_now, which bulk_update does not apply on its own
        now = timezone.now()
        for row in updated_rows:
            row.updated_at = now
        Price.objects.bulk_update(updated_rows, ["price", "free_units", "as_of", "source", "updated_at"])
    report.kept = sorted(expected_keys(regions) - set(lines))
    return report


def _shipped_price(
    key: Key, shipped: Mapping[Key, prices.PriceLine], catalog: Mapping[str, sizing.InstanceType]
) -> tuple[Decimal | None, str]:
    region, product, variant, _dimension = key
    if product == "compute":
        spec = catalog.get(variant)
        price = spec.on_demand.get(region) if spec is not None else None
        return price, "shipped"
    line = shipped.get(key)
    return (line.price if line is not None else None), "shipped"
