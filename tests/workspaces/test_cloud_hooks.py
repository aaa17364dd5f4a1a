"""Test hooks live outside production code: the provider offers one extension point (botocore handlers
registered by `CARREL_CLOUD_CLIENT_HOOKS`), production registers nothing, the test settings register the
call counter and the fault injector (tests/cloud_hooks.py)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests import cloud_hooks
from tests.cloud_hooks import api_call_counts, parse_faults
from workspaces import cloud
from workspaces.moto_server import SANDBOX_AWS_ENV

ROOT = Path(django_settings.BASE_DIR)
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "platform_site.settings.production",
    "DJANGO_SECRET_KEY": "k9$Qe1!xZ7rT3wY5uI8oP0aS2dF4gH6jK8lL1zX3cV5bN7mM9qW2eR4tY6uI8oP0",
    "DJANGO_ALLOWED_HOSTS": "carrel.example.org",
    "CARREL_PUBLIC_URL": "https://carrel.example.org",
}
# Builds a provider for a cloud account on the moto server and calls DescribeImages once.
PROVIDER_SCRIPT = textwrap.dedent(
    """
    import sys, types
    import django
    django.setup()
    from django.conf import settings
    from workspaces import cloud
    account = types.SimpleNamespace(
        id="acct", region="us-east-1", endpoint_url=sys.argv[1], credential_source="chain",
        role_arn="", external_id="", image_overrides={},
    )
    provider = cloud.AwsProvider(account)
    provider._call("DescribeImages", ImageIds=[sys.argv[2]])
    print("hooks", settings.CARREL_CLOUD_CLIENT_HOOKS)
    print("hook modules", sorted(name for name in sys.modules if name == "tests" or name.startswith("tests.")))
    """
)


def run_provider_script(env: dict, moto_url: str, image: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROVIDER_SCRIPT, moto_url, image],
        cwd=ROOT,
        env={**os.environ, **SANDBOX_AWS_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_register_no_hook_and_ignore_faults(moto, moto_image, tmp_path):
    result = run_provider_script(
        {
            **PRODUCTION_ENV,
            "CARREL_VAR_DIR": str(tmp_path),
            # Were faults honoured, this DescribeImages would fail: one attempt, throttled.
            "CARREL_CLOUD_FAULTS": "throttle:DescribeImages:5",
            "CARREL_CLOUD_MAX_ATTEMPTS": "1",
        },
        moto.url,
        moto_image,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hooks []" in result.stdout
    assert "hook modules []" in result.stdout


def test_the_test_settings_register_the_call_counter_and_the_fault_injector(settings):
    assert settings.CARREL_CLOUD_CLIENT_HOOKS == ["tests.cloud_hooks.count_calls", "tests.cloud_hooks.inject_faults"]
    assert cloud.client_hooks() == (cloud_hooks.count_calls, cloud_hooks.inject_faults)


def test_the_production_provider_has_no_fault_injection_or_call_counting():
    source = Path(cloud.__file__).read_text()
    assert "os._exit" not in source
    assert not re.search(r"\bfaults?\b|_FAULTS", source, re.IGNORECASE)
    assert "count_api_call" not in source and "api_call_counts" not in source
    assert "_snake" not in source


def test_every_new_client_is_passed_to_the_hooks(account, settings):
    settings.CARREL_CLOUD_CLIENT_HOOKS = ["tests.workspaces.test_cloud_hooks.record_client"]
    seen.clear()
    first, second = cloud.AwsProvider(account), cloud.AwsProvider(account)
    assert seen == [first.ec2, second.ec2]


seen: list = []


def record_client(client) -> None:
    seen.append(client)


def test_a_throttle_fault_works_through_the_hook_per_provider(account, settings):
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    settings.CARREL_CLOUD_FAULTS = "throttle:DescribeInstances:2"
    before = api_call_counts(["DescribeInstances"])["DescribeInstances"]
    provider = cloud.AwsProvider(account)
    for _ in range(2):
        with pytest.raises(cloud.TransientCloudError) as raised:
            provider.describe(["i-0123456789abcdef0"])
        assert raised.value.code == "RequestLimitExceeded" and raised.value.operation == "DescribeInstances"
    assert provider.describe(["i-0123456789abcdef0"]) == {}  # the provider recovered
    # Counted by the other hook: every call that returned, throttled or not.
    assert api_call_counts(["DescribeInstances"])["DescribeInstances"] - before == 3

    # The state is per provider: a new one is throttled afresh.
    with pytest.raises(cloud.TransientCloudError):
        cloud.AwsProvider(account).describe(["i-0123456789abcdef0"])


def test_the_client_retries_through_a_throttle_fault(account, settings):
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 3
    settings.CARREL_CLOUD_FAULTS = "throttle:DescribeInstances:2"
    assert cloud.AwsProvider(account).describe(["i-0123456789abcdef0"]) == {}


def test_without_the_hooks_faults_do_nothing(account, settings):
    settings.CARREL_CLOUD_CLIENT_HOOKS = []
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    settings.CARREL_CLOUD_FAULTS = "throttle:DescribeInstances:2"
    before = api_call_counts(["DescribeInstances"])["DescribeInstances"]
    assert cloud.AwsProvider(account).describe(["i-0123456789abcdef0"]) == {}
    assert api_call_counts(["DescribeInstances"])["DescribeInstances"] == before


def test_exit_after_ends_the_process_after_the_call(moto, moto_image, tmp_path):
    result = run_provider_script(
        {
            "DJANGO_SETTINGS_MODULE": "platform_site.settings.test",
            "CARREL_VAR_DIR": str(tmp_path),
            "CARREL_CLOUD_FAULTS": "exit-after:DescribeImages",
        },
        moto.url,
        moto_image,
    )
    assert result.returncode == 137, result.stdout + result.stderr
    assert "exiting the process after DescribeImages" in result.stderr
    assert "hooks" not in result.stdout


def test_fault_specs_parse_and_unknown_kinds_are_refused():
    assert parse_faults("throttle:RunInstances:3, throttle:DescribeInstances,exit-after:RunInstances") == (
        {"RunInstances": 3, "DescribeInstances": 1},
        {"RunInstances"},
    )
    assert parse_faults("") == ({}, set())
    with pytest.raises(ValueError, match="Unknown cloud fault"):
        parse_faults("explode:RunInstances")
