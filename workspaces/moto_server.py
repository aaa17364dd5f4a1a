"""A moto server on loopback: the EC2 peer of the sandbox, the tests and the benchmark.

It is a real HTTP endpoint; Carrel reaches it through the same boto3 code as AWS, with only
the cloud account's endpoint URL changed.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

# moto accepts any credentials; boto3 still needs some to sign requests.
SANDBOX_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    process: subprocess.Popen
    url: str

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310 (our loopback URL)
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto_server(port: int | None = None, *, log=None, timeout: float = 30) -> MotoServer:
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        env={**os.environ, **SANDBOX_AWS_ENV},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310
            return MotoServer(process=process, url=url)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto server did not start in time")


def sandbox_image_id(url: str, region: str = "us-east-1") -> str:
    """An image the moto server knows, used as every base OS's AMI in the sandbox."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=SANDBOX_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])["Images"]
    images = images or ec2.describe_images(Owners=["amazon"])["Images"]
    return sorted(images, key=lambda image: image["ImageId"])[0]["ImageId"]
