"""Which EC2 instance type a workspace gets, and what it costs per hour.

Functions over the catalog shipped in `workspaces/instance_types.yaml` (no cloud calls). Only
`hourly_rate` reads the database: the price book's line (budgets.Price, filled by
`manage.py prices_refresh`) wins over the shipped price. Prices are `decimal.Decimal`, never float.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from platform_site.errors import ValidationFailed

CATALOG_PATH = Path(__file__).with_name("instance_types.yaml")
SIZES: tuple[str, ...] = ("XS", "S", "M", "L", "XL")
WORKLOADS: tuple[str, ...] = ("general", "compute", "memory", "gpu")
DEFAULT_SIZE = "M"
DEFAULT_WORKLOAD = "general"
RATE_QUANTUM = Decimal("0.0001")
# The hardware configuration of a launch request (seed 002); storageGB and region do not size the machine.
CONFIGURATION_KEYS = frozenset({"cpuCores", "memoryGB", "gpu", "storageGB", "region"})
SIZING_KEYS = ("cpuCores", "memoryGB", "gpu")

# Each size climbs one family: twice the machine (or close to it) per step.
SIZE_LADDER: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        workload: MappingProxyType(dict(zip(SIZES, names, strict=True)))
        for workload, names in {
            "general": ("t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge"),
            "compute": ("c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge", "c5.9xlarge"),
            "memory": ("r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge", "r5.8xlarge"),
            "gpu": ("g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.12xlarge"),
        }.items()
    }
)

_FIELDS = (
    "family",
    "workload",
    "vcpu",
    "memory_gib",
    "gpu_count",
    "gpu_model",
    "gpu_memory_gib",
    "hibernation_supported",
    "architecture",
    "on_demand",
)


@dataclass(frozen=True)
class InstanceType:
    name: str
    family: str
    workload: str
    vcpu: int
    memory_gib: int
    gpu_count: int
    gpu_model: str | None
    gpu_memory_gib: int
    hibernation_supported: bool
    architecture: str
    # USD per hour, on-demand Linux, by region.
    on_demand: Mapping[str, Decimal] = field(default_factory=dict, hash=False, repr=False)

    def has_gpu(self, gpu: str) -> bool:
        """`gpu` is a model or part of one ("NVIDIA T4", "t4", "A10G"), or "any"."""
        wanted = gpu.strip().lower()
        if self.gpu_count < 1:
            return False
        return wanted == "any" or wanted in (self.gpu_model or "").lower()


@dataclass(frozen=True)
class _Catalog:
    types: Mapping[str, InstanceType]
    regions: tuple[str, ...]


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{CATALOG_PATH.name}: {where} is not a number: {value!r}") from None


@functools.cache
def _catalog() -> _Catalog:
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    regions = tuple(raw["regions"])
    types: dict[str, InstanceType] = {}
    for name, spec in raw["instance_types"].items():
        missing, extra = set(_FIELDS) - set(spec), set(spec) - set(_FIELDS)
        if missing or extra:
            raise ValueError(f"{CATALOG_PATH.name}: {name}: missing {sorted(missing)}, unknown {sorted(extra)}")
        if spec["workload"] not in WORKLOADS:
            raise ValueError(f"{CATALOG_PATH.name}: {name}: unknown workload {spec['workload']!r}")
        if set(spec["on_demand"]) != set(regions):
            raise ValueError(f"{CATALOG_PATH.name}: {name}: on_demand must price exactly {', '.join(regions)}")
        types[name] = InstanceType(
            name=name,
            family=spec["family"],
            workload=spec["workload"],
            vcpu=int(spec["vcpu"]),
            memory_gib=int(spec["memory_gib"]),
            gpu_count=int(spec["gpu_count"]),
            gpu_model=spec["gpu_model"] or None,
            gpu_memory_gib=int(spec["gpu_memory_gib"]),
            hibernation_supported=bool(spec["hibernation_supported"]),
            architecture=spec["architecture"],
            on_demand=MappingProxyType(
                {region: _decimal(price, f"{name} {region}") for region, price in spec["on_demand"].items()}
            ),
        )
    return _Catalog(types=MappingProxyType(types), regions=regions)


def instance_types() -> Mapping[str, InstanceType]:
    """Every instance type in the shipped catalog, by name (read once, then cached)."""
    return _catalog().types


def regions() -> tuple[str, ...]:
    """The regions the price table covers."""
    return _catalog().regions


def get_instance_type(name: str) -> InstanceType:
    try:
        return instance_types()[name]
    except (KeyError, TypeError):
        raise ValidationFailed(
            f"Unknown instance type '{name}'.",
            code="UNKNOWN_INSTANCE_TYPE",
            fields={"instance_type": [f"'{name}' is not in Carrel's instance-type catalog."]},
            remediation=f"Use one of: {', '.join(instance_types())}.",
        ) from None


def _require_region(region: str | None) -> str:
    if region not in _catalog().regions:
        raise ValidationFailed(
            f"Region '{region}' is not supported.",
            code="UNSUPPORTED_REGION",
            fields={"region": [f"Carrel has no prices for region '{region}'."]},
            remediation=f"Use one of: {', '.join(_catalog().regions)}.",
        )
    return region


def _validate_size(size: str) -> str:
    if size not in SIZES:
        raise ValidationFailed(
            f"Unknown size '{size}'.",
            code="INVALID_SIZE",
            fields={"size": [f"Must be one of {', '.join(SIZES)}."]},
        )
    return size


def size_instance_type(size: str, workload: str = DEFAULT_WORKLOAD) -> InstanceType:
    """The instance type for a size (XS–XL) on a workload's ladder."""
    _validate_size(size)
    if workload not in SIZE_LADDER:
        raise ValidationFailed(
            f"Unknown workload '{workload}'.",
            fields={"workload": [f"Must be one of {', '.join(WORKLOADS)}."]},
        )
    return get_instance_type(SIZE_LADDER[workload][size])


def hourly_rate(instance_type: InstanceType | str, region: str, *, spot: bool = False) -> Decimal:
    """The on-demand rate, USD per hour, quantized to 4 decimal places (ROUND_HALF_UP).

    The price book's line (budgets.Price: compute, the type, hour; one query) wins over the shipped
    catalog's price. `spot=True` returns the same on-demand rate: before a spot instance runs its price
    is not known (it moves per availability zone; `cloud.AwsProvider.spot_price` reads it), and spot
    never bills above on-demand, so the on-demand rate is an upper bound, never an underestimate.
    """
    from budgets.prices import listed_hourly_rate

    spec = instance_type if isinstance(instance_type, InstanceType) else get_instance_type(instance_type)
    _require_region(region)
    listed = listed_hourly_rate(region, spec.name)
    rate = listed if listed is not None else spec.on_demand[region]
    return rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)


def _describe(cpu_cores: float | Decimal, memory_gb: float | Decimal, gpu: str | None) -> str:
    described = f"{cpu_cores} vCPU, {memory_gb} GiB memory"
    return f"{described} and a GPU matching '{gpu}'" if gpu else described


def cheapest_for(
    *, cpu_cores: float | Decimal, memory_gb: float | Decimal, gpu: str | None, region: str
) -> InstanceType:
    """The cheapest type in `region` with at least `cpu_cores` vCPUs and `memory_gb` GiB.

    With `gpu` ("NVIDIA T4", "T4", "A10G", or "any") it must also have a GPU whose model contains
    that text, case-insensitively. Ties go to the smaller machine, then to the name.
    """
    _require_region(region)
    fits = [
        spec
        for spec in instance_types().values()
        if spec.vcpu >= cpu_cores and spec.memory_gib >= memory_gb and (not gpu or spec.has_gpu(gpu))
    ]
    if not fits:
        models = sorted({spec.gpu_model for spec in instance_types().values() if spec.gpu_model})
        raise ValidationFailed(
            f"No instance type in {region} has {_describe(cpu_cores, memory_gb, gpu)}.",
            code="NO_MATCHING_INSTANCE_TYPE",
            details=f"Requested configuration: {_describe(cpu_cores, memory_gb, gpu)} in {region}.",
            fields={"configuration": [f"Nothing fits {_describe(cpu_cores, memory_gb, gpu)}."]},
            remediation=f"Ask for fewer cores or less memory; GPU models on offer: {', '.join(models)}.",
        )
    return min(fits, key=lambda spec: (spec.on_demand[region], spec.vcpu, spec.memory_gib, spec.name))


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and value > 0


def _validate_configuration(configuration: dict) -> None:
    """Field errors use the generic VALIDATION_ERROR code, with `fields` naming each key."""
    problems: dict[str, list[str]] = {}
    for key in sorted(set(configuration) - CONFIGURATION_KEYS):
        problems[f"configuration.{key}"] = [f"Unknown key; expected {', '.join(sorted(CONFIGURATION_KEYS))}."]
    for key in ("cpuCores", "memoryGB", "storageGB"):
        if configuration.get(key) is not None and not _is_positive_number(configuration[key]):
            problems[f"configuration.{key}"] = ["Must be a positive number."]
    for key in ("gpu", "region"):
        if configuration.get(key) is not None and not isinstance(configuration[key], str):
            problems[f"configuration.{key}"] = ["Must be a string."]
    if problems:
        raise ValidationFailed("The hardware configuration is not valid.", fields=problems)


def choose_instance_type(
    *,
    region: str,
    template_defaults: dict,
    size: str | None = None,
    instance_type: str | None = None,
    configuration: dict | None = None,
) -> InstanceType:
    """The instance type for a launch or a resize. The first rule that applies wins:

    1. an explicit `instance_type`;
    2. a hardware `configuration` (seed 002: cpuCores, memoryGB, gpu, storageGB, region) that sets
       cpuCores, memoryGB or gpu: the cheapest type in the region that fits (`cheapest_for`);
       its `region`, when set, replaces `region`;
    3. an explicit `size` (XS–XL), climbing the template's workload ladder
       (`template_defaults["workload"]`, default "general");
    4. the template's own `instance_type`;
    5. the template's `size` on its workload ladder;
    6. size "M" on the workload ladder.

    A size that is given is validated even when a higher rule wins (INVALID_SIZE), and the chosen
    type must be priced in the region (UNSUPPORTED_REGION).
    """
    defaults = template_defaults or {}
    workload = defaults.get("workload") or DEFAULT_WORKLOAD
    if size:
        _validate_size(size)
    if configuration:
        _validate_configuration(configuration)
        region = configuration.get("region") or region
    _require_region(region)

    if instance_type:
        chosen = get_instance_type(instance_type)
    elif configuration and any(configuration.get(key) not in (None, "") for key in SIZING_KEYS):
        chosen = cheapest_for(
            cpu_cores=configuration.get("cpuCores") or 0,
            memory_gb=configuration.get("memoryGB") or 0,
            gpu=configuration.get("gpu") or None,
            region=region,
        )
    elif size:
        chosen = size_instance_type(size, workload)
    elif defaults.get("instance_type"):
        chosen = get_instance_type(defaults["instance_type"])
    else:
        chosen = size_instance_type(defaults.get("size") or DEFAULT_SIZE, workload)

    if region not in chosen.on_demand:  # every catalog type prices every region today; keep it that way
        raise ValidationFailed(
            f"{chosen.name} has no price in {region}.",
            code="UNSUPPORTED_REGION",
            fields={"region": [f"{chosen.name} is not offered in {region}."]},
        )
    return chosen
