"""Money tests use the workspace tests' cloud: a real moto server spoken to by the production boto3 code."""

from tests.workspaces.conftest import (  # noqa: F401 (fixtures)
    account,
    catalog,
    cloud,
    eager_tasks,
    ec2,
    moto,
    moto_image,
    retries,
)
