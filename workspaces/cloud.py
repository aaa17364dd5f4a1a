"""The one interface to the cloud, implemented with boto3.

Production, the sandbox and the tests all run this code: only the endpoint differs (a moto server on
loopback in the sandbox and tests). Clients use botocore's standard retry mode; errors come out as
`TransientCloudError` (worth retrying later: throttling, 5xx, capacity, connection trouble) or
`PermanentCloudError` (the request itself is wrong or forbidden).
"""

import base64
import binascii
import dataclasses
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError
from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from workspaces.models import CloudAccount

logger = logging.getLogger("carrel.cloud")

WORKSPACE_TAG = "carrel:workspace-id"
# Every resource also names its owner, so that tenants sharing one AWS account and region (the default:
# the server's own credentials) never mistake each other's resources for their own.
ORGANIZATION_TAG = "carrel:organization"
CLOUD_ACCOUNT_TAG = "carrel:cloud-account"
TRANSIENT_CODES = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "RequestTimeout",
}
# EC2 takes at most 200 values per filter (and 1000 InstanceIds, which fail the call on an unknown id).
DESCRIBE_BATCH = 200
# EBS volume types that accept provisioned IOPS / throughput in a block device mapping (EC2 refuses them elsewhere).
IOPS_VOLUME_TYPES = frozenset({"gp3", "io1", "io2"})
THROUGHPUT_VOLUME_TYPES = frozenset({"gp3"})
SPOT_PRODUCT_DESCRIPTION = "Linux/UNIX"
# One current price per availability zone: the largest region has six, so one small page holds them all.
SPOT_PRICE_MAX_RESULTS = 20


class CloudError(Exception):
    def __init__(self, code: str, message: str, operation: str = "") -> None:
        self.code = code
        self.message = message
        self.operation = operation
        super().__init__(f"{operation}: {code}: {message}" if operation else f"{code}: {message}")


class TransientCloudError(CloudError):
    """Throttling, provider 5xx, capacity or connection trouble: retry later."""


class PermanentCloudError(CloudError):
    """The provider refused the request itself: retrying will not help."""


_TRANSITION_TIME_RE = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")


def transition_time(reason: str) -> datetime | None:
    """The time in an EC2 StateTransitionReason such as "User initiated (2024-06-15 14:20:00 GMT)"."""
    match = _TRANSITION_TIME_RE.search(reason)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str
    state: str  # the provider's: pending, running, stopping, stopped, shutting-down, terminated
    instance_type: str
    public_ip: str | None
    private_ip: str | None
    launch_time: datetime | None
    hibernation_configured: bool
    state_reason: str
    tags: dict[str, str]
    # When the last state change was initiated, from StateTransitionReason ("User initiated (… GMT)").
    transition_time: datetime | None = None
    availability_zone: str | None = None

    @property
    def workspace_id(self) -> str | None:
        return self.tags.get(WORKSPACE_TAG)

    def to_json(self) -> dict[str, Any]:
        """For a task message (JSON): times as ISO 8601."""
        data = dataclasses.asdict(self)
        for name in ("launch_time", "transition_time"):
            data[name] = data[name].isoformat() if data[name] is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "InstanceInfo":
        fields = dict(data)
        for name in ("launch_time", "transition_time"):
            fields[name] = datetime.fromisoformat(fields[name]) if fields.get(name) else None
        return cls(**fields)


# CloudWatch GetMetricData: at most 500 metric queries per call (results past 100,800 datapoints page on NextToken).
METRIC_QUERIES_PER_CALL = 500


@dataclass(frozen=True)
class MetricSeries:
    """One metric query's datapoints, (timestamp, value) oldest first."""

    points: list[tuple[datetime, float]]


@dataclass(frozen=True)
class LaunchSpec:
    workspace_id: str
    name: str
    image_id: str
    instance_type: str
    security_group_id: str
    user_data: str
    tags: dict[str, str]
    root_volume_gb: int
    root_volume_type: str = "gp3"
    # Provisioned performance: IOPS for gp3/io1/io2, throughput (MiB/s) for gp3 only; None takes EC2's default.
    root_volume_iops: int | None = None
    root_volume_throughput: int | None = None
    hibernate: bool = False
    spot: bool = False
    subnet_id: str = ""
    key_name: str = ""


@dataclass(frozen=True)
class IngressRule:
    protocol: str
    from_port: int
    to_port: int
    cidr: str
    description: str = ""

    def key(self) -> tuple:
        return (self.protocol, self.from_port, self.to_port, self.cidr)


def _classify(error: Exception, operation: str) -> CloudError:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", str(error))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_CODES or status >= 500:
            return TransientCloudError(code, message, operation)
        return PermanentCloudError(code, message, operation)
    if isinstance(error, (EndpointConnectionError, ConnectionError)):
        return TransientCloudError("ConnectionError", str(error), operation)
    return TransientCloudError(type(error).__name__, str(error), operation)


# --- Client hooks ---------------------------------------------------------------------------------
# The one extension point: CARREL_CLOUD_CLIENT_HOOKS names functions (dotted paths) that are called with
# every new EC2 (and CloudWatch) client and may register botocore event handlers on `client.meta.events`
# (for instance `before-send.ec2` or `after-call.cloudwatch`). Production registers none; the test and bench
# settings register theirs (tests/cloud_hooks.py) this way.


@functools.lru_cache(maxsize=8)
def _import_hooks(paths: tuple[str, ...]) -> tuple[Callable, ...]:
    return tuple(import_string(path) for path in paths)


def client_hooks() -> tuple[Callable, ...]:
    return _import_hooks(tuple(settings.CARREL_CLOUD_CLIENT_HOOKS))


# --- Sessions -----------------------------------------------------------------------------------

_sessions = threading.local()
ASSUMED_ROLE_REFRESH_SECONDS = 300


def _cached_session(
    key: tuple, build: Callable[[], tuple[boto3.Session, float | None]], expires_at: float | None = None
) -> boto3.Session:
    """One boto3 session per thread and credentials: a session caches the loaded EC2 service model,
    which is most of the CPU a fresh session costs. Sessions are not thread-safe, hence per thread."""
    cache_: dict[tuple, tuple[boto3.Session, float | None]] | None = getattr(_sessions, "by_key", None)
    if cache_ is None:
        cache_ = _sessions.by_key = {}
    entry = cache_.get(key)
    if entry is not None and (entry[1] is None or entry[1] - time.time() > ASSUMED_ROLE_REFRESH_SECONDS):
        return entry[0]
    session, expiry = build()
    cache_[key] = (session, expiry)
    return session


# --- The provider --------------------------------------------------------------------------------


class AwsProvider:
    """EC2 for one cloud account. Create one per task; clients are cheap and not shared across threads."""

    def __init__(self, account: "CloudAccount", *, region: str | None = None) -> None:
        self.account = account
        self.region = region or account.region
        session = self._session()
        config = self._client_config()
        self.ec2: EC2Client = session.client("ec2", endpoint_url=account.endpoint_url or None, config=config)
        for hook in client_hooks():
            hook(self.ec2)

    def _client_config(self) -> Config:
        return Config(
            region_name=self.region,
            retries={"mode": "standard", "total_max_attempts": settings.CARREL_CLOUD_MAX_ATTEMPTS},
            connect_timeout=5,
            read_timeout=30,
        )

    def metric_data(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, MetricSeries]:
        """CloudWatch GetMetricData for up to METRIC_QUERIES_PER_CALL queries (each {"Id", "MetricStat"}), following
        NextToken: each query's datapoints between `start` and `end`, merged across pages, oldest first."""
        if len(queries) > METRIC_QUERIES_PER_CALL:
            raise ValueError(f"GetMetricData takes at most {METRIC_QUERIES_PER_CALL} queries a call")
        client = self._session().client(
            "cloudwatch", endpoint_url=self.account.endpoint_url or None, config=self._client_config()
        )
        for hook in client_hooks():
            hook(client)
        found: dict[str, dict[datetime, float]] = {query["Id"]: {} for query in queries}
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        while True:
            try:
                response = client.get_metric_data(**params)
            except (ClientError, BotoCoreError) as error:
                raise _classify(error, "GetMetricData") from error
            for result in response.get("MetricDataResults", []):
                points = found.setdefault(result["Id"], {})
                points.update(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            token = response.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        return {key: MetricSeries(sorted(points.items())) for key, points in found.items()}

    def _session(self) -> boto3.Session:
        account = self.account
        if account.credential_source == "assume_role" and account.role_arn:

            def assume() -> tuple[boto3.Session, float]:
                sts = boto3.client("sts", region_name=self.region)
                params = {"RoleArn": account.role_arn, "RoleSessionName": f"carrel-{account.id}"}
                if account.external_id:
                    params["ExternalId"] = account.external_id
                credentials = sts.assume_role(**params)["Credentials"]
                session = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    region_name=self.region,
                )
                return session, credentials["Expiration"].timestamp()

            return _cached_session(("role", account.role_arn, account.external_id, self.region), assume)
        return _cached_session(("chain", self.region), lambda: (boto3.Session(region_name=self.region), None))

    def _call(self, operation: str, **params: Any) -> Any:
        method = getattr(self.ec2, xform_name(operation))
        try:
            return method(**params)
        except (ClientError, BotoCoreError) as error:
            raise _classify(error, operation) from error

    # --- instances ---

    def find_workspace_instances(self, workspace_id: str, cloud_account_id: str) -> list[InstanceInfo]:
        """Instances tagged for a workspace of this cloud account that are not terminated: how a retried launch
        adopts its instance, and what terminating it ends. Both tags must match, so that nothing else in a
        shared AWS account is adopted or terminated by mistake."""
        response = self._call(
            "DescribeInstances",
            Filters=[
                {"Name": f"tag:{WORKSPACE_TAG}", "Values": [workspace_id]},
                {"Name": f"tag:{CLOUD_ACCOUNT_TAG}", "Values": [cloud_account_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ],
        )
        return _instances(response)

    def list_account_instances(self, cloud_account_id: str) -> list[InstanceInfo]:
        """Live instances tagged as this cloud account's workspaces, and no one else's."""
        paginator = self.ec2.get_paginator("describe_instances")
        found: list[InstanceInfo] = []
        try:
            for page in paginator.paginate(
                Filters=[
                    {"Name": f"tag:{CLOUD_ACCOUNT_TAG}", "Values": [cloud_account_id]},
                    {"Name": "tag-key", "Values": [WORKSPACE_TAG]},
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
                ]
            ):
                found.extend(_instances(page))
        except (ClientError, BotoCoreError) as error:
            raise _classify(error, "DescribeInstances") from error
        return found

    def launch(self, spec: LaunchSpec) -> InstanceInfo:
        # The root volume is the image's own device (Ubuntu: /dev/sda1, Amazon Linux: /dev/xvda); a mapping
        # under any other name would attach a second, blank volume and leave the root one unsized and unencrypted.
        root_device = self.root_device_name(spec.image_id)
        params: dict[str, Any] = {
            "ImageId": spec.image_id,
            "InstanceType": spec.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            # EC2 makes RunInstances idempotent per client token; a retried call returns the same instance.
            "ClientToken": spec.workspace_id,
            "SecurityGroupIds": [spec.security_group_id],
            "UserData": spec.user_data,
            "BlockDeviceMappings": [{"DeviceName": root_device, "Ebs": _root_ebs(spec)}],
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": _tag_list({**spec.tags, "Name": spec.name})},
                {"ResourceType": "volume", "Tags": _tag_list(spec.tags)},
            ],
            "MetadataOptions": {"HttpTokens": "required"},
        }
        if spec.hibernate:
            params["HibernationOptions"] = {"Configured": True}
        if spec.spot:
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {
                    "SpotInstanceType": "persistent",
                    "InstanceInterruptionBehavior": "hibernate" if spec.hibernate else "stop",
                },
            }
        if spec.subnet_id:
            params["SubnetId"] = spec.subnet_id
        if spec.key_name:
            params["KeyName"] = spec.key_name
        return _instances(self._call("RunInstances", **params))[0]

    def spot_price(self, instance_type: str, availability_zone: str | None = None) -> Decimal | None:
        """The current Linux/UNIX spot price, USD per hour: the newest price in `availability_zone`, or the
        lowest across the region's zones when none is given; None when EC2 quotes none (type not offered)."""
        params: dict[str, Any] = {
            "InstanceTypes": [instance_type],
            "ProductDescriptions": [SPOT_PRODUCT_DESCRIPTION],
            # From now: EC2 answers the price in effect now (the last change before it) for each zone.
            "StartTime": datetime.now(UTC),
            "MaxResults": SPOT_PRICE_MAX_RESULTS,
        }
        if availability_zone:
            params["Filters"] = [{"Name": "availability-zone", "Values": [availability_zone]}]
        history = self._call("DescribeSpotPriceHistory", **params).get("SpotPriceHistory", [])
        newest: dict[str, tuple[datetime, Decimal]] = {}
        for entry in history:
            zone = entry.get("AvailabilityZone", "")
            if entry.get("InstanceType") != instance_type or (availability_zone and zone != availability_zone):
                continue
            try:
                price = Decimal(str(entry["SpotPrice"]))
            except (KeyError, InvalidOperation):
                continue
            stamp = entry.get("Timestamp") or datetime.min.replace(tzinfo=UTC)
            if zone not in newest or stamp > newest[zone][0]:
                newest[zone] = (stamp, price)
        return min((price for _, price in newest.values()), default=None)

    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        """Many instances in few calls (DESCRIBE_BATCH ids a call). Ids the provider does not know (yet: EC2
        is eventually consistent, a new instance may not be listed at once) are simply absent: the
        `instance-id` filter leaves them out, where InstanceIds would fail the whole call with
        InvalidInstanceID.NotFound."""
        ids = sorted(set(instance_ids))
        found: dict[str, InstanceInfo] = {}
        for start in range(0, len(ids), DESCRIBE_BATCH):
            batch = ids[start : start + DESCRIBE_BATCH]
            params: dict[str, Any] = {"Filters": [{"Name": "instance-id", "Values": batch}]}
            while True:
                response = self._call("DescribeInstances", **params)
                found.update({info.instance_id: info for info in _instances(response)})
                if not response.get("NextToken"):
                    break
                params["NextToken"] = response["NextToken"]
        return found

    def stop(self, instance_id: str, *, hibernate: bool = False) -> None:
        self._call("StopInstances", InstanceIds=[instance_id], Hibernate=hibernate)

    def start(self, instance_id: str) -> None:
        self._call("StartInstances", InstanceIds=[instance_id])

    def terminate(self, instance_id: str) -> None:
        self._call("TerminateInstances", InstanceIds=[instance_id])

    def modify_instance_type(self, instance_id: str, instance_type: str) -> None:
        self._call("ModifyInstanceAttribute", InstanceId=instance_id, InstanceType={"Value": instance_type})

    def console_output(self, instance_id: str) -> str:
        response = self._call("GetConsoleOutput", InstanceId=instance_id, Latest=True)
        output: str = response.get("Output") or ""
        # EC2 sends the console base64-encoded; some EC2-compatible endpoints send it as text.
        try:
            return base64.b64decode(output.strip(), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return output

    # --- images ---

    def image_for(self, base_os: str) -> str:
        """The AMI for a base OS: the account's override, else the newest matching public image (whose root
        device name is remembered from the same DescribeImages call)."""
        override: str | None = (self.account.image_overrides or {}).get(base_os) or (
            self.account.image_overrides or {}
        ).get("*")
        if override:
            return override
        owner, pattern = IMAGE_SOURCES.get(base_os, IMAGE_SOURCES["ubuntu-24.04"])
        images = self._call(
            "DescribeImages",
            Owners=[owner],
            Filters=[{"Name": "name", "Values": [pattern]}, {"Name": "state", "Values": ["available"]}],
        )["Images"]
        if not images:
            raise PermanentCloudError("ImageNotFound", f"No image for {base_os} in {self.region}", "DescribeImages")
        image = max(images, key=lambda image: image.get("CreationDate", ""))
        self._remember_root_device(image)
        image_id: str = image["ImageId"]
        return image_id

    def root_device_name(self, image_id: str) -> str:
        """The image's root device name (`/dev/sda1`, `/dev/xvda`, …): one DescribeImages per image, then
        remembered, since an image never changes."""
        cached: str | None = cache.get(self._root_device_key(image_id))
        if cached:
            return cached
        images = self._call("DescribeImages", ImageIds=[image_id])["Images"]
        if not images:
            message = f"No image {image_id} in {self.region}"
            raise PermanentCloudError("InvalidAMIID.NotFound", message, "DescribeImages")
        return self._remember_root_device(images[0])

    def _remember_root_device(self, image: Mapping[str, Any]) -> str:
        name: str | None = image.get("RootDeviceName")
        if not name:
            raise PermanentCloudError(
                "InvalidAMIID.Unsupported", f"Image {image.get('ImageId')} names no root device", "DescribeImages"
            )
        cache.set(self._root_device_key(image["ImageId"]), name, timeout=None)
        return name

    def _root_device_key(self, image_id: str) -> str:
        # Image ids are regional; the endpoint keeps a sandbox's images apart from AWS's.
        return f"cloud:root-device:{self.account.endpoint_url or 'aws'}:{self.region}:{image_id}"

    # --- security groups ---

    def ensure_security_group(self, workspace_id: str, tags: dict[str, str]) -> tuple[str, bool]:
        """The workspace's security group: (id, created). Created first; looked up only if it exists."""
        name = f"carrel-{workspace_id}"
        params: dict[str, Any] = {
            "GroupName": name,
            "Description": f"Carrel workspace {workspace_id}",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": _tag_list(tags)}],
        }
        vpc_id = self._default_vpc_id()
        if vpc_id:
            params["VpcId"] = vpc_id
        try:
            return self.ec2.create_security_group(**params)["GroupId"], True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "InvalidGroup.Duplicate":
                raise _classify(error, "CreateSecurityGroup") from error
        except BotoCoreError as error:
            raise _classify(error, "CreateSecurityGroup") from error
        existing = self._call("DescribeSecurityGroups", Filters=[{"Name": "group-name", "Values": [name]}])
        group_id: str = existing["SecurityGroups"][0]["GroupId"]
        return group_id, False

    def _default_vpc_id(self) -> str | None:
        """The region's default VPC, remembered for an hour: it does not change under a running service."""
        key = f"cloud:default-vpc:{getattr(self.account, 'id', '')}:{self.region}:{self.account.endpoint_url}"
        cached: str | None = cache.get(key)
        if cached is not None:
            return cached or None
        vpcs = self._call("DescribeVpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        vpc_id: str = vpcs[0]["VpcId"] if vpcs else ""
        cache.set(key, vpc_id, timeout=3600)
        return vpc_id or None

    def delete_security_group(self, group_id: str) -> None:
        try:
            self.ec2.delete_security_group(GroupId=group_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "InvalidGroup.NotFound":
                raise _classify(error, "DeleteSecurityGroup") from error

    def ingress_rules(self, group_id: str) -> list[IngressRule]:
        groups = self._call("DescribeSecurityGroups", GroupIds=[group_id])["SecurityGroups"]
        return _ingress_of(groups[0]) if groups else []

    def ingress_of_groups(self, group_ids: Iterable[str]) -> dict[str, list[IngressRule]]:
        """Many groups' ingress in few calls. Filtering by group-id (not GroupIds) leaves out a group that
        no longer exists instead of failing the whole call."""
        ids = sorted(set(group_ids))
        found: dict[str, list[IngressRule]] = {}
        for start in range(0, len(ids), DESCRIBE_BATCH):
            batch = ids[start : start + DESCRIBE_BATCH]
            response = self._call("DescribeSecurityGroups", Filters=[{"Name": "group-id", "Values": batch}])
            found.update({group["GroupId"]: _ingress_of(group) for group in response["SecurityGroups"]})
        return found

    def set_ingress(
        self, group_id: str, wanted: list[IngressRule], *, current: list[IngressRule] | None = None
    ) -> None:
        """Make the group's ingress exactly `wanted`: authorize what is missing, revoke what is extra.
        Pass `current=[]` for a group just created, to skip reading it back."""
        present = {rule.key(): rule for rule in (self.ingress_rules(group_id) if current is None else current)}
        desired = {rule.key(): rule for rule in wanted}
        extra = [rule for key, rule in present.items() if key not in desired]
        missing = [rule for key, rule in desired.items() if key not in present]
        if extra:
            self._call("RevokeSecurityGroupIngress", GroupId=group_id, IpPermissions=_permissions(extra))
        if missing:
            self._call("AuthorizeSecurityGroupIngress", GroupId=group_id, IpPermissions=_permissions(missing))


IMAGE_SOURCES = {
    "ubuntu-24.04": ("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"),
    "ubuntu-22.04": ("099720109477", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"),
    "debian-12": ("136693071363", "debian-12-amd64-*"),
    "rocky-9": ("792107900819", "Rocky-9-EC2-Base-9.*x86_64"),
    "amazon-linux-2023": ("137112412989", "al2023-ami-2023.*-x86_64"),
}


def _root_ebs(spec: LaunchSpec) -> dict[str, Any]:
    ebs: dict[str, Any] = {
        "VolumeSize": spec.root_volume_gb,
        "VolumeType": spec.root_volume_type,
        "DeleteOnTermination": True,
        # Hibernation writes RAM to the root volume, which must then be encrypted.
        "Encrypted": True,
    }
    # EC2 rejects Iops on gp2/st1/sc1 and Throughput on anything but gp3; the price book bills neither there.
    if spec.root_volume_iops and spec.root_volume_type in IOPS_VOLUME_TYPES:
        ebs["Iops"] = spec.root_volume_iops
    if spec.root_volume_throughput and spec.root_volume_type in THROUGHPUT_VOLUME_TYPES:
        ebs["Throughput"] = spec.root_volume_throughput
    return ebs


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": str(value)} for key, value in tags.items()]


def _ingress_of(group: Mapping[str, Any]) -> list[IngressRule]:
    rules = []
    for permission in group.get("IpPermissions", []):
        # EC2 keeps IPv4 and IPv6 sources apart: IpRanges (CidrIp) and Ipv6Ranges (CidrIpv6).
        sources = [(r["CidrIp"], r) for r in permission.get("IpRanges", [])]
        sources += [(r["CidrIpv6"], r) for r in permission.get("Ipv6Ranges", [])]
        for cidr, source in sources:
            rules.append(
                IngressRule(
                    protocol=permission.get("IpProtocol", "tcp"),
                    from_port=permission.get("FromPort", -1),
                    to_port=permission.get("ToPort", -1),
                    cidr=cidr,
                    description=source.get("Description", ""),
                )
            )
    return rules


def _permissions(rules: list[IngressRule]) -> list[dict[str, Any]]:
    permissions = []
    for rule in rules:
        # EC2 refuses an IPv6 network in IpRanges (CidrIp); it goes in Ipv6Ranges (CidrIpv6).
        ranges, key = ("Ipv6Ranges", "CidrIpv6") if ":" in rule.cidr else ("IpRanges", "CidrIp")
        source: dict[str, str] = {key: rule.cidr}
        if rule.description:
            source["Description"] = rule.description
        permission: dict[str, Any] = {"IpProtocol": rule.protocol, ranges: [source]}
        if rule.protocol != "-1":
            permission["FromPort"], permission["ToPort"] = rule.from_port, rule.to_port
        permissions.append(permission)
    return permissions


def _instances(response: Mapping[str, Any]) -> list[InstanceInfo]:
    instances = []
    for reservation in response.get("Reservations", [{"Instances": response.get("Instances", [])}]):
        for raw in reservation.get("Instances", []):
            instances.append(
                InstanceInfo(
                    instance_id=raw["InstanceId"],
                    state=raw["State"]["Name"],
                    instance_type=raw.get("InstanceType", ""),
                    public_ip=raw.get("PublicIpAddress"),
                    private_ip=raw.get("PrivateIpAddress"),
                    launch_time=raw.get("LaunchTime"),
                    hibernation_configured=bool(raw.get("HibernationOptions", {}).get("Configured")),
                    state_reason=(raw.get("StateReason") or {}).get("Message", ""),
                    transition_time=transition_time(raw.get("StateTransitionReason") or ""),
                    availability_zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
                    tags={tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])},
                )
            )
    return instances
