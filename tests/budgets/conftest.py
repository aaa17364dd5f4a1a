"""Money tests use the workspace tests' cloud: a real moto server spoken to by the production boto3 code."""

from tests.workspaces.conftest import (  # noqa: F401 (fixtures)
    account,
    catalog,
    cloud,
    ec2,
    eager_tasks,
    moto,
    moto_image,
    retries,
)
