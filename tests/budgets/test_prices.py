"""The price book: reading the AWS Price List (recorded GetProducts responses in tests/budgets/price_list/, the
real shape: PriceList entries are JSON strings), `manage.py prices_refresh`, the book as displayed, the hourly
rate's preference for it, the spot price and the root volume's provisioned performance."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import boto3
import pytest
import time_machine
from botocore.stub import Stubber
from django.core.management import CommandError, call_command

from budgets import prices, pricing_api
from budgets.models import Price
from workspaces import cloud, sizing

RECORDED = Path(__file__).with_name("price_list")
TODAY = date(2026, 12, 5)


def recorded() -> list[str]:
    return list(pricing_api.read_price_list_dir(RECORDED))


def parse(**kwargs) -> pricing_api.ParsedPriceList:
    return pricing_api.parse_price_list(recorded(), **kwargs)


def refresh(*args: str) -> str:
    out = StringIO()
    with time_machine.travel(datetime(2026, 12, 5, 9, tzinfo=UTC), tick=False):
        call_command("prices_refresh", "--from-dir", str(RECORDED), *args, stdout=out)
    return out.getvalue()


def row(region: str, product: str, variant: str, dimension: str) -> Price:
    return Price.objects.get(region=region, product=product, variant=variant, dimension=dimension)


def document(family: str, attributes: dict, dimensions: list[dict], service: str = "AmazonEC2") -> str:
    """One PriceList entry, as AWS sends it: a JSON string."""
    return json.dumps(
        {
            "product": {"productFamily": family, "attributes": attributes, "sku": "TESTSKU"},
            "serviceCode": service,
            "terms": {
                "OnDemand": {
                    "TESTSKU.JRTCKXETXF": {
                        "priceDimensions": {f"TESTSKU.JRTCKXETXF.R{i}": d for i, d in enumerate(dimensions)},
                        "offerTermCode": "JRTCKXETXF",
                    }
                }
            },
        }
    )


GP3 = {
    "locationType": "AWS Region",
    "regionCode": "us-east-1",
    "usagetype": "EBS:VolumeUsage.gp3",
    "volumeApiName": "gp3",
}


def dim(usd, unit="GB-Mo", begin="0", end="Inf") -> dict:
    return {"unit": unit, "beginRange": begin, "endRange": end, "pricePerUnit": {"USD": usd}}


# --- the parser, on recorded responses -----------------------------------------------------------


def test_it_reads_every_line_of_the_recorded_price_list_exactly():
    parsed = parse()
    assert parsed.problems == []
    found = {key: line.price for key, line in parsed.lines.items()}
    for region, expected in {
        "us-east-1": {
            ("compute", "t3.medium", "hour"): "0.0416",
            ("compute", "c5.large", "hour"): "0.085",
            ("ebs", "gp3", "storage"): "0.08",
            ("ebs", "gp3", "iops"): "0.005",
            ("ebs", "gp3", "throughput"): "0.04",  # listed as 40.96 per GiBps-month
            ("ebs", "gp2", "storage"): "0.10",
            ("ebs", "io1", "storage"): "0.125",
            ("ebs", "io1", "iops"): "0.065",
            ("ebs", "io2", "storage"): "0.125",
            ("ebs", "io2", "iops"): "0.065",  # the first tier
            ("ebs", "st1", "storage"): "0.045",
            ("ebs", "sc1", "storage"): "0.015",
            ("snapshot", "standard", "storage"): "0.05",
            ("efs", "standard", "storage"): "0.30",
        },
        "eu-west-1": {
            ("compute", "t3.medium", "hour"): "0.0456",
            ("compute", "c5.large", "hour"): "0.096",
            ("ebs", "gp3", "storage"): "0.088",
            ("ebs", "gp3", "iops"): "0.0055",
            ("ebs", "gp3", "throughput"): "0.044",  # 45.056 / 1024
            ("ebs", "gp2", "storage"): "0.11",
            ("ebs", "io1", "storage"): "0.138",
            ("ebs", "io1", "iops"): "0.072",
            ("ebs", "io2", "storage"): "0.138",
            ("ebs", "io2", "iops"): "0.072",
            ("ebs", "st1", "storage"): "0.05",
            ("ebs", "sc1", "storage"): "0.0168",
            ("snapshot", "standard", "storage"): "0.05",
            ("efs", "standard", "storage"): "0.33",
        },
    }.items():
        for (product, variant, dimension), price in expected.items():
            assert found.pop((region, product, variant, dimension)) == Decimal(price), (region, variant, dimension)
    assert found == {}  # nothing else: not magnetic volumes, archived snapshots, a Local Zone, other tiers
    assert all(type(line.price) is Decimal for line in parsed.lines.values())


def test_it_ignores_what_a_workspace_is_not_and_says_why_io2_stops_at_the_first_tier():
    parsed = parse()
    us_t3 = parsed.lines[("us-east-1", "compute", "t3.medium", "hour")]
    # Windows 0.06, Dedicated 0.0458, SQL Web, an unused reservation: present in the list, none chosen
    assert us_t3.price == Decimal("0.0416") and us_t3.unit == "Hrs"
    assert parsed.lines[("us-east-1", "ebs", "gp3", "storage")].price == Decimal("0.08")  # not the Local Zone's 0.096
    assert parsed.lines[("us-east-1", "ebs", "io2", "iops")].note == "first tier (up to 32,000 IOPS)"
    assert sorted(note.split(" (sku")[0] for note in parsed.notes) == [
        f"{region} io2 EBS IOPS Tier {tier}: only the first io2 IOPS tier (up to 32,000 IOPS) is kept"
        for region in ("eu-west-1", "us-east-1")
        for tier in (2, 3)
    ]
    assert len(parsed.notes) == 4 and parsed.ignored >= 14


def test_it_keeps_only_the_regions_and_instance_types_asked_for():
    parsed = parse(regions={"eu-west-1"}, instance_types={"c5.large"})
    assert {key[0] for key in parsed.lines} == {"eu-west-1"}
    assert [key for key in parsed.lines if key[1] == "compute"] == [("eu-west-1", "compute", "c5.large", "hour")]


# --- the parser, on the awkward cases ------------------------------------------------------------


def test_a_tiered_dimension_keeps_the_tier_starting_at_zero_and_says_so():
    tiers = [dim("0.0455000000", "IOPS-Mo", "32000", "64000"), dim("0.0650000000", "IOPS-Mo", "0", "32000")]
    attributes = {**GP3, "usagetype": "EBS:VolumeP-IOPS.gp3", "group": "EBS IOPS"}
    parsed = pricing_api.parse_price_list([document("System Operation", attributes, tiers)])
    line = parsed.lines[("us-east-1", "ebs", "gp3", "iops")]
    assert (line.price, line.note) == (Decimal("0.065"), "first tier kept")


def test_it_takes_documents_already_decoded_too():
    parsed = pricing_api.parse_price_list([json.loads(document("Storage", GP3, [dim("0.0800000000")]))])
    assert parsed.lines[("us-east-1", "ebs", "gp3", "storage")].price == Decimal("0.08")


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([document("Storage", GP3, [dim("0.08", unit="Hrs")])], "priced per 'Hrs'"),
        ([document("Storage", GP3, [dim("0.08")]), document("Storage", GP3, [dim("0.09")])], "disagrees with 0.08"),
        ([document("Storage", GP3, [dim("0.0000000000")])], "price is 0"),
        ([document("Storage", GP3, [dim("cheap")])], "ConversionSyntax"),
        ([document("Storage", GP3, [dim("0.08"), dim("0.07")])], "2 on-demand prices start at 0"),
        ([document("Storage", GP3, [])], "no on-demand price"),
        (["{not json"], "unreadable price list entry"),
    ],
)
def test_what_it_cannot_read_is_a_problem_not_a_guess(entries, problem):
    parsed = pricing_api.parse_price_list(entries)
    assert len(parsed.problems) == 1 and problem in parsed.problems[0], parsed.problems


def test_a_price_sent_as_a_json_number_is_refused_not_read_through_float():
    entry = document("Storage", GP3, [dim("0.08")]).replace('"USD": "0.08"', '"USD": 0.08')
    assert '"USD": 0.08' in entry
    assert pricing_api.parse_price_list([entry]).problems


def test_identical_lines_from_two_skus_agree():
    entries = [document("Storage", GP3, [dim("0.0800000000")]), document("Storage", GP3, [dim("0.08")])]
    parsed = pricing_api.parse_price_list(entries)
    assert parsed.problems == [] and len(parsed.lines) == 1


# --- fetching from the Price List API ------------------------------------------------------------


def test_it_asks_the_price_list_api_in_us_east_1_page_after_page():
    assert pricing_api.pricing_client().meta.region_name == "us-east-1"  # wherever the region priced is
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    first, second = (json.loads((RECORDED / f"ec2_ebs_eu-west-1_{n}.json").read_text()) for n in (1, 2))
    empty = {"FormatVersion": "aws_v1", "PriceList": []}
    with Stubber(client) as stub:
        for service_code, filters in pricing_api.queries("eu-west-1"):
            params = {"ServiceCode": service_code, "Filters": filters, "FormatVersion": "aws_v1", "MaxResults": 100}
            if (
                service_code == "AmazonEC2"
                and {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "Storage"} in filters
            ):
                stub.add_response("get_products", first, params)  # it carries a NextToken: the next call sends it
                stub.add_response("get_products", second, {**params, "NextToken": first["NextToken"]})
            else:
                stub.add_response("get_products", empty, params)
        entries = list(pricing_api.fetch_price_list(["eu-west-1"], client=client))
        stub.assert_no_pending_responses()
    assert entries == first["PriceList"] + second["PriceList"]
    families = {
        f["Value"] for _, filters in pricing_api.queries("eu-west-1") for f in filters if f["Field"] == "productFamily"
    }
    assert families == {"Compute Instance", "Storage", "System Operation", "Provisioned Throughput", "Storage Snapshot"}


def test_an_api_error_is_a_price_list_error():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "not allowed", 400)
        with pytest.raises(pricing_api.PriceListError, match="AccessDeniedException"):
            list(pricing_api.fetch_price_list(["us-east-1"], client=client))


def test_a_directory_without_responses_is_refused(tmp_path):
    with pytest.raises(pricing_api.PriceListError, match="no \\*.json"):
        list(pricing_api.read_price_list_dir(tmp_path))


# --- manage.py prices_refresh --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refresh_fills_the_book_from_the_price_list():
    out = refresh()
    t3 = row("us-east-1", "compute", "t3.medium", "hour")
    assert (t3.price, t3.as_of, t3.source) == (Decimal("0.0416"), TODAY, "aws-price-list")
    assert row("eu-west-1", "ebs", "gp3", "throughput").price == Decimal("0.044")
    gp3_iops = row("us-east-1", "ebs", "gp3", "iops")
    assert (gp3_iops.price, gp3_iops.free_units) == (Decimal("0.005"), Decimal("3000"))
    assert row("us-east-1", "ebs", "gp3", "throughput").free_units == Decimal("125")
    assert row("us-east-1", "ebs", "io1", "iops").free_units == Decimal("0")
    assert Price.objects.count() == 28
    # the recorded prices are the shipped ones: nothing changed, and what the list lacks (us-east-2, r5...) is kept
    assert "28 unchanged" in out and "0 changed" in out
    assert "us-east-1 compute r5.large hour: not in the price list, kept" in out
    assert "note: us-east-1 io2 EBS IOPS Tier 2" in out


@pytest.mark.django_db
def test_a_refresh_prints_old_to_new_and_never_deletes_what_it_could_not_refresh():
    stale = {"region": "us-east-1", "as_of": date(2026, 6, 1), "source": "aws-price-list"}
    Price.objects.create(product="ebs", variant="gp3", dimension="storage", price=Decimal("0.09"), **stale)
    Price.objects.create(product="compute", variant="r5.large", dimension="hour", price=Decimal("0.2"), **stale)
    out = refresh()
    assert "us-east-1 ebs gp3 storage: 0.09 (aws-price-list) → 0.08" in out
    assert "1 changed, 27 unchanged" in out
    r5 = row("us-east-1", "compute", "r5.large", "hour")  # not in the list: untouched
    assert (r5.price, r5.as_of) == (Decimal("0.2"), date(2026, 6, 1))
    assert "us-east-1 compute r5.large hour: not in the price list, kept" in out


@pytest.mark.django_db
def test_a_line_new_to_the_book_and_unknown_to_the_shipped_prices_says_so(tmp_path, monkeypatch):
    shipped = prices.shipped_lines()
    shipped.pop(("eu-west-1", "efs", "standard", "storage"))
    monkeypatch.setattr(prices, "shipped_lines", lambda: shipped)
    out = refresh("--region", "eu-west-1")
    assert "eu-west-1 efs standard storage: (none) → 0.33" in out
    assert set(Price.objects.values_list("region", flat=True)) == {"eu-west-1"}


@pytest.mark.django_db
def test_a_refresh_with_a_problem_writes_nothing(tmp_path):
    for file in RECORDED.glob("*.json"):
        (tmp_path / file.name).write_text(file.read_text())
    page = json.loads((tmp_path / "efs_us-east-1.json").read_text())
    page["PriceList"][0] = page["PriceList"][0].replace("GB-Mo", "GB-Hrs")
    (tmp_path / "efs_us-east-1.json").write_text(json.dumps(page))
    Price.objects.create(
        region="us-east-1", product="ebs", variant="gp3", dimension="storage", price=Decimal("0.09"), as_of=TODAY
    )
    with pytest.raises(CommandError, match="Price book unchanged: us-east-1 efs standard storage .* 'GB-Hrs'"):
        call_command("prices_refresh", "--from-dir", str(tmp_path), stdout=StringIO())
    assert list(Price.objects.values_list("variant", "price")) == [("gp3", Decimal("0.09"))]


@pytest.mark.django_db(transaction=True)
def test_a_refresh_failing_half_way_rolls_back(monkeypatch):
    Price.objects.create(
        region="us-east-1", product="ebs", variant="gp3", dimension="storage", price=Decimal("0.09"), as_of=TODAY
    )

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Price.objects, "bulk_update", fail)
    with pytest.raises(RuntimeError):
        refresh()
    assert list(Price.objects.values_list("variant", "price")) == [("gp3", Decimal("0.09"))]


@pytest.mark.django_db
def test_a_refresh_refuses_a_region_carrel_does_not_launch_in():
    with pytest.raises(CommandError, match="ap-southeast-2"):
        call_command("prices_refresh", "--region", "ap-southeast-2", "--from-dir", str(RECORDED))


# --- reading the book ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_a_refresh_the_hourly_rate_and_storage_prices_come_from_the_book(monkeypatch):
    refresh()
    Price.objects.filter(region="eu-west-1", product="compute", variant="c5.large").update(price=Decimal("0.09745"))
    assert sizing.hourly_rate("c5.large", "eu-west-1") == Decimal("0.0975")
    assert prices.price_of("eu-west-1", "ebs", "gp3", "throughput").source == "aws-price-list"
    lines = prices.storage_lines(region="us-east-1", volume_type="gp3", size_gb=100, iops=4000, throughput=250)
    assert [(line.item, line.units, line.rate) for line in lines] == [
        ("gp3 storage", Decimal(100), Decimal("0.08")),
        ("gp3 iops", Decimal(1000), Decimal("0.005")),
        ("gp3 throughput", Decimal(125), Decimal("0.04")),
    ]
    assert prices.monthly_rate(lines) == Decimal("18.00")


@pytest.mark.django_db
def test_the_book_shows_every_line_with_its_source_in_one_query(django_assert_num_queries):
    Price.objects.create(
        region="eu-west-1",
        product="ebs",
        variant="gp3",
        dimension="storage",
        price=Decimal("0.0881"),
        as_of=TODAY,
        source="aws-price-list",
    )
    with django_assert_num_queries(1):
        lines = prices.book()
    by_key = {(line.region, line.product, line.variant, line.dimension): line for line in lines}
    gp3 = by_key[("eu-west-1", "ebs", "gp3", "storage")]
    assert (gp3.price, gp3.unit, gp3.as_of, gp3.source) == (Decimal("0.0881"), "GB-month", TODAY, "aws-price-list")
    t3 = by_key[("us-east-2", "compute", "t3.medium", "hour")]
    assert (t3.price, t3.unit, t3.as_of, t3.source) == (Decimal("0.0416"), "hour", None, "shipped")
    iops = by_key[("us-east-1", "ebs", "gp3", "iops")]
    assert (iops.unit, iops.free_units, iops.source) == ("IOPS-month", Decimal("3000"), "shipped")
    assert lines == sorted(lines, key=lambda line: (line.region, line.product, line.variant, line.dimension))
    with django_assert_num_queries(1):
        eu = prices.book("eu-west-1")
    assert {line.region for line in eu} == {"eu-west-1"} and gp3 in eu
    assert len(eu) == len(sizing.instance_types()) + 12  # 10 EBS lines, snapshots, EFS


# --- spot prices (moto serves DescribeSpotPriceHistory) -------------------------------------------


@pytest.mark.django_db
def test_the_spot_price_of_a_zone_and_the_lowest_of_the_region(account):
    provider = cloud.AwsProvider(account)
    price = provider.spot_price("t3.medium", "us-east-1a")
    assert price == Decimal("0.00001") and type(price) is Decimal
    assert provider.spot_price("t3.medium", None) == Decimal("0.00001")
    assert provider.spot_price("t3.medium", "eu-west-1a") is None  # not a zone of this region


@pytest.mark.django_db
def test_the_spot_price_takes_the_newest_per_zone_then_the_lowest(account):
    provider = cloud.AwsProvider(account)

    def entry(zone, price, hour, instance_type="c5.large"):
        stamp = datetime(2026, 12, 5, hour, tzinfo=UTC)
        return {"AvailabilityZone": zone, "InstanceType": instance_type, "ProductDescription": "Linux/UNIX",
                "SpotPrice": price, "Timestamp": stamp}  # fmt: skip

    history = [
        entry("us-east-1a", "0.0300", 1),
        entry("us-east-1a", "0.0410", 8),  # newer: 1a is now 0.041
        entry("us-east-1b", "0.0350", 7),
        entry("us-east-1c", "0.0100", 7, instance_type="c5.xlarge"),  # another type: ignored
    ]
    with Stubber(provider.ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": history})
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": history[:2]})
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []})
        assert provider.spot_price("c5.large") == Decimal("0.0350")
        assert provider.spot_price("c5.large", "us-east-1a") == Decimal("0.0410")
        assert provider.spot_price("c5.large", "us-east-1f") is None


@pytest.mark.django_db
def test_the_spot_price_asks_for_linux_from_now_in_one_small_call(account):
    provider = cloud.AwsProvider(account)
    seen = []
    provider.ec2.meta.events.register(
        "provide-client-params.ec2.DescribeSpotPriceHistory", lambda params, **kwargs: seen.append(dict(params))
    )
    with time_machine.travel(datetime(2026, 12, 5, 9, tzinfo=UTC), tick=False):
        provider.spot_price("t3.medium", "us-east-1b")
    assert seen == [
        {
            "InstanceTypes": ["t3.medium"],
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": datetime(2026, 12, 5, 9, tzinfo=UTC),
            "MaxResults": cloud.SPOT_PRICE_MAX_RESULTS,
            "Filters": [{"Name": "availability-zone", "Values": ["us-east-1b"]}],
        }
    ]


# --- the root volume's provisioned performance ---------------------------------------------------


def launch_spec(volume_type: str, iops: int | None, throughput: int | None, **kwargs) -> cloud.LaunchSpec:
    return cloud.LaunchSpec(
        workspace_id=f"ws-{volume_type}",
        name=volume_type,
        instance_type="t3.micro",
        user_data="",
        tags={"carrel:workspace-id": f"ws-{volume_type}"},
        root_volume_gb=40,
        root_volume_type=volume_type,
        root_volume_iops=iops,
        root_volume_throughput=throughput,
        **{"image_id": "ami-x", "security_group_id": "sg-x", **kwargs},
    )


@pytest.mark.parametrize(
    ("volume_type", "iops", "throughput", "expected"),
    [
        ("gp3", 4000, 250, {"Iops": 4000, "Throughput": 250}),
        ("gp3", None, None, {}),
        ("io1", 5000, 250, {"Iops": 5000}),  # throughput is gp3's alone
        ("io2", 6000, None, {"Iops": 6000}),
        ("gp2", 4000, 250, {}),  # gp2, st1 and sc1 take neither: EC2 would refuse the launch
        ("st1", 4000, 250, {}),
    ],
)
def test_the_root_volume_gets_iops_and_throughput_only_where_ec2_accepts_them(volume_type, iops, throughput, expected):
    ebs = cloud._root_ebs(launch_spec(volume_type, iops, throughput))
    assert {key: ebs[key] for key in ("Iops", "Throughput") if key in ebs} == expected
    assert (ebs["VolumeSize"], ebs["VolumeType"], ebs["Encrypted"]) == (40, volume_type, True)


@pytest.mark.django_db
def test_a_gp3_root_volume_is_launched_with_its_iops_and_throughput(account, ec2):
    provider = cloud.AwsProvider(account)
    sent = []
    provider.ec2.meta.events.register(
        "provide-client-params.ec2.RunInstances", lambda params, **kwargs: sent.append(params)
    )
    group = ec2.create_security_group(GroupName="sg-gp3", Description="iops test")["GroupId"]
    spec = launch_spec("gp3", 4000, 250, image_id=provider.image_for("ubuntu-24.04"), security_group_id=group)
    instance = provider.launch(spec)
    assert sent[0]["BlockDeviceMappings"][0]["Ebs"]["Iops"] == 4000
    assert sent[0]["BlockDeviceMappings"][0]["Ebs"]["Throughput"] == 250
    # moto accepts the mapping but keeps gp3's defaults on the volume (and cannot launch io1/io2 root volumes at
    # all: it drops Iops from block device mappings), so the request is what this test can hold it to.
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance.instance_id]}])
    assert [(v["Size"], v["VolumeType"]) for v in volumes["Volumes"]] == [(40, "gp3")]
