"""Review: the what-if body's odd corners answer 4xx, never 500."""

import pytest

pytestmark = pytest.mark.django_db

CASES = [
    {"instance_type": "t3.medium", "region": "xx-nowhere-1"},
    {"instance_type": "no.such"},
    {"instance_type": "t3.medium", "volume_type": "io1"},
    {"instance_type": "t3.medium", "volume_type": "io2", "storage_gb": 65536},
    {"instance_type": "t3.medium", "volume_type": "sc1", "storage_gb": 1},
    {"instance_type": "t3.medium", "configuration": {"region": "xx-nowhere-1"}},
    {"instance_type": "t3.medium", "configuration": {"storageGB": 10**9}},
    {"instance_type": "t3.medium", "configuration": {"storageGB": -5}},
    {"instance_type": "t3.medium", "configuration": {"cpu": 10**6}},
    {"template": "no such template"},
    {"instance_type": "t3.medium", "spot": True, "region": "us-east-1"},
    {"instance_type": "t3.medium", "hours_per_day": 0},
    {"instance_type": "t3.medium", "days": 3660, "hours_per_day": 24},
    {"instance_type": "t3.medium", "hours_per_day": "0.001"},
]


@pytest.mark.parametrize("extra", CASES, ids=[str(i) for i in range(len(CASES))])
def test_it_answers_odd_whatif_bodies_without_500(owner_client, project, extra):
    body = {"project": project.pk, "hours_per_day": 8, "days": 30, **extra}
    response = owner_client.post("/api/v1/costs/what-if", body, format="json")
    assert response.status_code in (200, 400, 404), (extra, response.status_code, response.content[:300])
