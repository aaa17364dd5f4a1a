"""The root volume is mapped under the image's own root device name (Ubuntu: /dev/sda1, Amazon Linux:
/dev/xvda), so that it is the root volume that is sized and encrypted, not a second blank one."""

import pytest

from tests.cloud_hooks import api_call_counts
from tests.workspaces.conftest import cloud_instances
from workspaces import cloud, services
from workspaces.models import CloudAccount, Workspace

# Images moto ships in every region (moto/ec2/resources/amis.json), with their root device names.
UBUNTU = ("099720109477", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*")
AMAZON_LINUX = ("137112412989", "amzn2-ami-hvm-*")


def find_image(ec2, source) -> dict:
    owner, pattern = source
    images = ec2.describe_images(Owners=[owner], Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
    assert images, source
    return max(images, key=lambda image: image.get("CreationDate", ""))


@pytest.fixture
def images(ec2) -> dict[str, dict]:
    found = {"/dev/sda1": find_image(ec2, UBUNTU), "/dev/xvda": find_image(ec2, AMAZON_LINUX)}
    assert {name: image["RootDeviceName"] for name, image in found.items()} == {
        "/dev/sda1": "/dev/sda1",
        "/dev/xvda": "/dev/xvda",
    }
    return found


def launch_spec(ec2, image_id: str, *, name: str = "root-test") -> cloud.LaunchSpec:
    group = ec2.create_security_group(GroupName=f"sg-{name}", Description="root device test")["GroupId"]
    return cloud.LaunchSpec(
        workspace_id=f"ws-{name}",
        name=name,
        image_id=image_id,
        instance_type="t3.micro",
        security_group_id=group,
        user_data="",
        tags={"carrel:workspace-id": f"ws-{name}"},
        root_volume_gb=42,
        root_volume_type="gp3",
        hibernate=True,
    )


def assert_one_root_volume(ec2, instance_id: str, device: str, *, size: int, volume_type: str) -> None:
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["RootDeviceName"] == device
    assert [mapping["DeviceName"] for mapping in instance["BlockDeviceMappings"]] == [device]
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    assert len(volumes) == 1, volumes
    volume = volumes[0]
    assert [attachment["Device"] for attachment in volume["Attachments"]] == [device]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (size, volume_type, True)


@pytest.mark.parametrize("device", ["/dev/sda1", "/dev/xvda"])
def test_launch_maps_the_root_volume_under_the_images_root_device(account, ec2, images, device):
    image_id = images[device]["ImageId"]
    account.image_overrides = {"*": image_id}
    provider = cloud.AwsProvider(account)
    spec = launch_spec(ec2, provider.image_for("ubuntu-24.04"))
    assert spec.image_id == image_id
    instance = provider.launch(spec)
    assert_one_root_volume(ec2, instance.instance_id, device, size=42, volume_type="gp3")


def test_an_override_image_is_described_once_by_id_then_remembered(account, ec2, images):
    image_id = images["/dev/sda1"]["ImageId"]
    account.image_overrides = {"*": image_id}
    before = api_call_counts(["DescribeImages"])["DescribeImages"]
    first = cloud.AwsProvider(account)
    first.launch(launch_spec(ec2, first.image_for("ubuntu-24.04"), name="first"))
    assert api_call_counts(["DescribeImages"])["DescribeImages"] - before == 1
    second = cloud.AwsProvider(account)  # another task, another provider: the image is remembered
    instance = second.launch(launch_spec(ec2, second.image_for("ubuntu-24.04"), name="second"))
    assert api_call_counts(["DescribeImages"])["DescribeImages"] - before == 1
    assert_one_root_volume(ec2, instance.instance_id, "/dev/sda1", size=42, volume_type="gp3")


@pytest.mark.parametrize(("base_os", "device"), [("ubuntu-24.04", "/dev/sda1"), ("amazon-linux-2023", "/dev/xvda")])
def test_the_image_search_reads_the_root_device_in_the_same_call(account, ec2, images, monkeypatch, base_os, device):
    monkeypatch.setattr(cloud, "IMAGE_SOURCES", {"ubuntu-24.04": UBUNTU, "amazon-linux-2023": AMAZON_LINUX})
    account.image_overrides = {}
    before = api_call_counts(["DescribeImages"])["DescribeImages"]
    provider = cloud.AwsProvider(account)
    image_id = provider.image_for(base_os)
    assert image_id == images[device]["ImageId"]
    instance = provider.launch(launch_spec(ec2, image_id))
    assert api_call_counts(["DescribeImages"])["DescribeImages"] - before == 1
    assert_one_root_volume(ec2, instance.instance_id, device, size=42, volume_type="gp3")


def test_an_unknown_image_is_a_permanent_error(account, ec2):
    provider = cloud.AwsProvider(account)
    with pytest.raises(cloud.PermanentCloudError) as raised:
        provider.launch(launch_spec(ec2, "ami-0123456789abcdef0"))
    assert raised.value.code.startswith("InvalidAMIID")
    assert cloud_instances(ec2) == []


def test_a_workspace_launched_from_an_ubuntu_image_gets_its_root_volume_sized(
    owner_client, project, account, ec2, images, settings
):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    CloudAccount.objects.filter(pk=account.pk).update(image_overrides={"*": images["/dev/sda1"]["ImageId"]})
    response = owner_client.post(
        "/api/v1/instances/launch",
        {"name": "ubuntu-box", "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    services.workspace_provision(job_id=response.json()["job_id"])
    workspace = Workspace.objects.get(pk=response.json()["workspace_id"])
    assert workspace.state == "running"
    assert_one_root_volume(
        ec2,
        workspace.provider_instance_id,
        "/dev/sda1",
        size=workspace.root_volume_gb,
        volume_type=workspace.root_volume_type,
    )
