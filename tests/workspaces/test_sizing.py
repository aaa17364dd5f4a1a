"""workspaces.sizing: the shipped instance-type catalog, size ladders, cheapest fit, rates and precedence."""

import dataclasses
from decimal import Decimal

import pytest

from platform_site.errors import ValidationFailed
from workspaces import sizing

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")
REQUIRED_TYPES = (
    *("t3.micro", "t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge"),
    *("c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge", "c5.9xlarge"),
    *("r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge", "r5.8xlarge"),
    *("g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.12xlarge"),
    *("g5.xlarge", "g5.2xlarge", "p3.2xlarge"),
)


def choose(**kwargs) -> str:
    kwargs.setdefault("region", "us-east-1")
    kwargs.setdefault("template_defaults", {})
    return sizing.choose_instance_type(**kwargs).name


def raises(code: str, call, *args, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.code
    return caught.value


# --- the catalog ---------------------------------------------------------------------------------


def test_it_ships_every_required_instance_type_priced_in_every_region():
    catalog = sizing.instance_types()
    assert set(REQUIRED_TYPES) <= set(catalog)
    assert set(sizing.regions()) == set(REGIONS)
    for name, spec in catalog.items():
        assert spec.name == name
        assert spec.architecture == "x86_64"
        assert spec.workload in sizing.WORKLOADS
        assert name.startswith(spec.family + ".")
        assert set(spec.on_demand) == set(REGIONS)
        for price in spec.on_demand.values():
            assert isinstance(price, Decimal) and price > 0


def test_it_knows_the_published_us_east_1_prices():
    prices = {name: sizing.instance_types()[name].on_demand["us-east-1"] for name in REQUIRED_TYPES}
    assert prices["t3.medium"] == Decimal("0.0416")
    assert prices["c5.large"] == Decimal("0.085")
    assert prices["r5.large"] == Decimal("0.126")
    assert prices["g4dn.xlarge"] == Decimal("0.526")
    # Ireland costs more than Virginia for every type.
    for name in REQUIRED_TYPES:
        assert sizing.instance_types()[name].on_demand["eu-west-1"] > prices[name]


def test_it_describes_hardware_and_gpus():
    t4 = sizing.get_instance_type("g4dn.2xlarge")
    assert (t4.family, t4.workload, t4.vcpu, t4.memory_gib) == ("g4dn", "gpu", 8, 32)
    assert (t4.gpu_count, t4.gpu_model, t4.gpu_memory_gib) == (1, "NVIDIA T4", 16)
    assert sizing.get_instance_type("g4dn.12xlarge").gpu_count == 4
    assert sizing.get_instance_type("g5.xlarge").gpu_model == "NVIDIA A10G"
    assert sizing.get_instance_type("p3.2xlarge").gpu_model == "NVIDIA V100"
    cpu_only = sizing.get_instance_type("c5.9xlarge")
    assert (cpu_only.vcpu, cpu_only.memory_gib, cpu_only.gpu_count, cpu_only.gpu_model) == (36, 72, 0, None)
    assert {spec.workload for spec in sizing.instance_types().values() if spec.gpu_count} == {"gpu"}


def test_it_flags_hibernation_where_aws_allows_it():
    supported = {name for name, spec in sizing.instance_types().items() if spec.hibernation_supported}
    for name in ("t3.micro", "t3.2xlarge", "c5.large", "c5.9xlarge", "r5.large", "r5.4xlarge", "g4dn.xlarge"):
        assert name in supported
    assert "g4dn.4xlarge" in supported
    for name in ("r5.8xlarge", "g4dn.8xlarge", "g4dn.12xlarge", "g5.xlarge", "g5.2xlarge", "p3.2xlarge"):
        assert name not in supported
    # AWS refuses hibernation at 150 GiB of RAM and above.
    assert all(sizing.instance_types()[name].memory_gib < 150 for name in supported)


def test_the_catalog_is_loaded_once_and_read_only():
    assert sizing.instance_types() is sizing.instance_types()
    spec = sizing.get_instance_type("t3.medium")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.vcpu = 64
    with pytest.raises(TypeError):
        sizing.instance_types()["t3.huge"] = spec
    with pytest.raises(TypeError):
        spec.on_demand["us-east-1"] = Decimal("0")
    assert hash(spec) == hash(sizing.get_instance_type("t3.medium"))


def test_it_refuses_an_unknown_instance_type():
    error = raises("UNKNOWN_INSTANCE_TYPE", sizing.get_instance_type, "m7i.mega")
    assert "m7i.mega" in error.message
    assert "instance_type" in error.fields
    assert error.status_code == 400


# --- size ladders ---------------------------------------------------------------------------------


def test_every_ladder_climbs_one_family_and_every_rung_exists():
    assert set(sizing.SIZE_LADDER) == {"general", "compute", "memory", "gpu"}
    for workload, ladder in sizing.SIZE_LADDER.items():
        assert tuple(ladder) == ("XS", "S", "M", "L", "XL")
        rungs = [sizing.get_instance_type(name) for name in ladder.values()]
        assert len({rung.family for rung in rungs}) == 1
        prices = [rung.on_demand["us-east-1"] for rung in rungs]
        assert prices == sorted(prices) and len(set(prices)) == 5, workload
        assert all(rung.workload == workload for rung in rungs)


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        ("general", ["t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge"]),
        ("compute", ["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge", "c5.9xlarge"]),
        ("memory", ["r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge", "r5.8xlarge"]),
        ("gpu", ["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.12xlarge"]),
    ],
)
def test_it_sizes_each_workload(workload, expected):
    assert [sizing.size_instance_type(size, workload).name for size in ("XS", "S", "M", "L", "XL")] == expected


def test_size_defaults_to_the_general_ladder_and_is_validated():
    assert sizing.size_instance_type("L").name == "t3.xlarge"
    for bad in ("XXL", "m", "", "medium"):
        error = raises("INVALID_SIZE", sizing.size_instance_type, bad, "general")
        assert "size" in error.fields
    raises("VALIDATION_ERROR", sizing.size_instance_type, "M", "quantum")


# --- cheapest fit ----------------------------------------------------------------------------------


def test_it_picks_the_cheapest_t4_machine_for_8_cores_and_32_gb():
    chosen = sizing.cheapest_for(cpu_cores=8, memory_gb=32, gpu="NVIDIA T4", region="us-east-1")
    assert chosen.name == "g4dn.2xlarge"


def test_it_picks_the_cheapest_machine_without_a_gpu():
    assert sizing.cheapest_for(cpu_cores=2, memory_gb=4, gpu=None, region="us-east-1").name == "t3.medium"
    assert sizing.cheapest_for(cpu_cores=1, memory_gb=1, gpu=None, region="eu-west-1").name == "t3.micro"
    # 16 cores and 32 GiB: c5.4xlarge ($0.68) beats r5.4xlarge and g4dn.4xlarge.
    assert sizing.cheapest_for(cpu_cores=16, memory_gb=32, gpu=None, region="us-west-2").name == "c5.4xlarge"
    # 2 cores with 16 GiB: r5.large ($0.126) beats t3.xlarge ($0.1664).
    assert sizing.cheapest_for(cpu_cores=2, memory_gb=16, gpu=None, region="us-east-2").name == "r5.large"


def test_it_matches_gpu_models_by_case_insensitive_substring():
    assert sizing.cheapest_for(cpu_cores=1, memory_gb=1, gpu="t4", region="us-east-1").name == "g4dn.xlarge"
    assert sizing.cheapest_for(cpu_cores=1, memory_gb=1, gpu="A10G", region="us-east-1").name == "g5.xlarge"
    assert sizing.cheapest_for(cpu_cores=8, memory_gb=32, gpu="nvidia a10g", region="us-east-1").name == "g5.2xlarge"
    assert sizing.cheapest_for(cpu_cores=4, memory_gb=16, gpu="V100", region="us-east-1").name == "p3.2xlarge"
    assert sizing.cheapest_for(cpu_cores=1, memory_gb=1, gpu="any", region="us-east-1").name == "g4dn.xlarge"
    # More cores than any single-T4 machine but a T4 requested: the four-GPU box.
    assert sizing.cheapest_for(cpu_cores=40, memory_gb=1, gpu="T4", region="us-east-1").name == "g4dn.12xlarge"


def test_it_refuses_a_configuration_nothing_fits():
    error = raises(
        "NO_MATCHING_INSTANCE_TYPE",
        sizing.cheapest_for,
        cpu_cores=8,
        memory_gb=32,
        gpu="NVIDIA RTX A5000",
        region="us-west-2",
    )
    assert "RTX A5000" in error.message and "8 vCPU" in error.message and "32 GiB" in error.message
    assert "us-west-2" in error.message
    assert "NVIDIA T4" in error.remediation
    error = raises(
        "NO_MATCHING_INSTANCE_TYPE", sizing.cheapest_for, cpu_cores=64, memory_gb=8, gpu=None, region="us-east-1"
    )
    assert "64 vCPU" in error.message
    raises("NO_MATCHING_INSTANCE_TYPE", sizing.cheapest_for, cpu_cores=8, memory_gb=128, gpu="A10G", region="us-east-1")


def test_cheapest_for_refuses_an_unpriced_region():
    error = raises("UNSUPPORTED_REGION", sizing.cheapest_for, cpu_cores=2, memory_gb=4, gpu=None, region="mars-1")
    assert "region" in error.fields
    assert "us-east-1" in error.remediation


# --- hourly rates -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_returns_exact_decimal_rates_quantized_to_four_places():
    rate = sizing.hourly_rate("t3.medium", "us-east-1")
    assert rate == Decimal("0.0416") and isinstance(rate, Decimal)
    assert rate.as_tuple().exponent == -4
    assert sizing.hourly_rate("c5.large", "us-east-1") == Decimal("0.0850")
    assert str(sizing.hourly_rate("c5.large", "us-east-1")) == "0.0850"
    assert sizing.hourly_rate(sizing.get_instance_type("r5.large"), "eu-west-1") == Decimal("0.1410")
    assert sizing.hourly_rate("g4dn.xlarge", "us-east-1") == Decimal("0.5260")


@pytest.mark.django_db
def test_spot_is_priced_at_on_demand_an_upper_bound_no_assumed_discount():
    assert not hasattr(sizing, "spot_discount")
    for name in REQUIRED_TYPES:
        for region in REGIONS:
            assert sizing.hourly_rate(name, region, spot=True) == sizing.hourly_rate(name, region)


@pytest.mark.django_db
def test_the_price_book_wins_over_the_shipped_catalog_in_one_query(django_assert_num_queries):
    from budgets.models import Price

    Price.objects.create(
        region="eu-west-1",
        product="compute",
        variant="t3.medium",
        dimension="hour",
        price=Decimal("0.04565"),
        as_of="2026-12-01",
        source="aws-price-list",
    )
    with django_assert_num_queries(1):
        # 0.04565 rounds half up to 0.0457 (banker's rounding would give 0.0456)
        assert sizing.hourly_rate("t3.medium", "eu-west-1") == Decimal("0.0457")
    assert sizing.hourly_rate("t3.medium", "eu-west-1", spot=True) == Decimal("0.0457")
    assert sizing.hourly_rate("t3.medium", "us-east-1") == Decimal("0.0416")  # no line there: the catalog's


def test_hourly_rate_refuses_unknown_types_and_regions():
    raises("UNKNOWN_INSTANCE_TYPE", sizing.hourly_rate, "x9.giant", "us-east-1")
    raises("UNSUPPORTED_REGION", sizing.hourly_rate, "t3.medium", "ap-southeast-2")


# --- precedence ---------------------------------------------------------------------------------------

GPU_TEMPLATE = {"workload": "gpu", "size": "S", "root_volume_gb": 100}
PINNED_TEMPLATE = {"workload": "memory", "size": "XL", "instance_type": "c5.xlarge"}


def test_explicit_instance_type_wins_over_everything():
    assert (
        choose(
            template_defaults=PINNED_TEMPLATE,
            instance_type="t3.micro",
            size="XL",
            configuration={"cpuCores": 8, "memoryGB": 32, "gpu": "T4"},
        )
        == "t3.micro"
    )
    raises("UNKNOWN_INSTANCE_TYPE", choose, instance_type="t3.nonexistent")


def test_a_configuration_wins_over_sizes_and_template_defaults():
    configuration = {"cpuCores": 8, "memoryGB": 32, "gpu": "NVIDIA T4", "storageGB": 512}
    assert choose(template_defaults=PINNED_TEMPLATE, size="XS", configuration=configuration) == "g4dn.2xlarge"
    assert choose(template_defaults=GPU_TEMPLATE, configuration={"cpuCores": 2, "memoryGB": 4}) == "t3.medium"
    # Only memory given: cores are unconstrained.
    assert choose(configuration={"memoryGB": 16}) == "r5.large"
    # Only a GPU given.
    assert choose(configuration={"gpu": "A10G"}) == "g5.xlarge"


def test_a_configuration_region_replaces_the_region():
    configuration = {"cpuCores": 2, "memoryGB": 4, "region": "eu-west-1"}
    assert choose(region="us-east-1", configuration=configuration) == "t3.medium"
    raises("UNSUPPORTED_REGION", choose, region="us-east-1", configuration={"cpuCores": 2, "region": "moon-1"})
    # A configuration that only names storage or region does not size the machine: the template does.
    assert choose(template_defaults=GPU_TEMPLATE, configuration={"storageGB": 200, "region": "us-west-2"}) == (
        "g4dn.2xlarge"
    )


def test_a_configuration_is_validated():
    error = raises("VALIDATION_ERROR", choose, configuration={"cpuCores": 0, "memoryGB": "lots", "disk": 5})
    assert set(error.fields) == {"configuration.cpuCores", "configuration.memoryGB", "configuration.disk"}
    error = raises("VALIDATION_ERROR", choose, configuration={"cpuCores": True, "gpu": 1})
    assert set(error.fields) == {"configuration.cpuCores", "configuration.gpu"}
    raises("NO_MATCHING_INSTANCE_TYPE", choose, configuration={"cpuCores": 8, "memoryGB": 32, "gpu": "RTX A5000"})


def test_an_explicit_size_climbs_the_template_workload_ladder():
    assert choose(template_defaults=GPU_TEMPLATE, size="L") == "g4dn.8xlarge"
    assert choose(template_defaults={"workload": "compute", "size": "L"}, size="XS") == "c5.large"
    # The explicit size wins over the template's pinned instance type.
    assert choose(template_defaults=PINNED_TEMPLATE, size="S") == "r5.xlarge"
    # No workload in the template: the general ladder.
    assert choose(template_defaults={}, size="XL") == "t3.2xlarge"
    assert choose(template_defaults={"workload": None}, size="S") == "t3.medium"


def test_the_template_instance_type_then_its_size_then_m():
    assert choose(template_defaults=PINNED_TEMPLATE) == "c5.xlarge"
    assert choose(template_defaults=GPU_TEMPLATE) == "g4dn.2xlarge"
    assert choose(template_defaults={"workload": "memory"}) == "r5.2xlarge"
    assert choose(template_defaults={}) == "t3.large"
    assert choose(template_defaults=None) == "t3.large"


def test_the_catalog_templates_defaults_resolve():
    # Instance defaults as the shipped catalog resolves them (see templates/catalog).
    assert choose(template_defaults={"workload": "general", "size": "M", "root_volume_gb": 30}) == "t3.large"
    assert choose(template_defaults={"workload": "compute", "size": "L"}) == "c5.4xlarge"
    assert choose(template_defaults={"workload": "memory", "size": "M"}) == "r5.2xlarge"
    assert choose(template_defaults={"workload": "gpu", "size": "S", "root_volume_gb": 100}) == "g4dn.2xlarge"


def test_choose_validates_sizes_workloads_and_regions():
    error = raises("INVALID_SIZE", choose, size="XXL")
    assert "size" in error.fields
    # A bad size is refused even when an explicit instance type would win.
    raises("INVALID_SIZE", choose, size="huge", instance_type="t3.medium")
    raises("INVALID_SIZE", choose, template_defaults={"size": "XXXL"})
    raises("VALIDATION_ERROR", choose, template_defaults={"workload": "mining"})
    raises("UNSUPPORTED_REGION", choose, region="ap-south-1")
    raises("UNSUPPORTED_REGION", choose, region="ap-south-1", instance_type="t3.medium")
    raises("UNKNOWN_INSTANCE_TYPE", choose, template_defaults={"instance_type": "z1d.large"})
